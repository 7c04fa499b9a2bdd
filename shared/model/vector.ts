/**
 * Loops over whole flat arrays (gradients, weights) on the coordinator's hot path. Each loop is the
 * whole body of a small function, run once on a tiny array when this module loads: V8 otherwise
 * compiles such a loop on stack replacement before the code after it ever ran, then throws the
 * optimized code away at that code, on every call (a deopt loop that made these loops ten times slower).
 *
 * @module
 */

/** `out[i] += w * x[i]` for every i. */
export function addScaled(out: Float32Array, x: Float32Array, w: number): void {
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + w * x[i]!;
}

/** Zero when every value of `a` is finite; NaN when one is NaN or infinite (`x * 0` is NaN for those). */
export function nonFiniteProbe(a: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * 0;
  return sum;
}

/** The index of the first NaN or infinity of `a`, or `undefined` when all values are finite. */
export function firstNonFinite(a: Float32Array): number | undefined {
  if (nonFiniteProbe(a) === 0) return undefined;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return undefined;
}

for (let warm = 0; warm < 2; warm++) {
  const tiny = new Float32Array(4);
  addScaled(tiny, tiny, 0.5);
  nonFiniteProbe(tiny);
  firstNonFinite(Float32Array.of(0, NaN));
}
