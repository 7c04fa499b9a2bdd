/**
 * The one summary statistic timings use: the median, robust to the stray slow step (a GC pause, a
 * noisy neighbour) that would pull a mean.
 *
 * @module
 */

/** The median of `xs` (the mean of the middle two for an even count); 0 for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
