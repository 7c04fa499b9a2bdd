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

/** `values[i] = 0 + w * values[i]` for every i: {@link addScaled} onto zeros, in place (-0 becomes +0). */
export function scaleFromZero(values: Float32Array, w: number): void {
  for (let i = 0; i < values.length; i++) values[i] = 0 + w * values[i]!;
}

/** `out[i] = x[i] + w * out[i]` for every i: {@link addScaled}'s sum into `x` stored in `out` instead. */
export function addToScaled(out: Float32Array, x: Float32Array, w: number): void {
  for (let i = 0; i < out.length; i++) out[i] = x[i]! + w * out[i]!;
}

/**
 * `out[i] = Σₖ weights[k] · sources[k][i]`, summed in the order of `sources` in double precision and
 * rounded once: one pass over the output whatever the number of sources.
 */
export function weightedSum(
  out: Float32Array,
  sources: readonly Float32Array[],
  weights: readonly number[],
): void {
  if (sources.length === 2) return weightedSum2(out, sources[0]!, weights[0]!, sources[1]!, weights[1]!);
  out.fill(0);
  for (let k = 0; k < sources.length; k++) addScaled(out, sources[k]!, weights[k]!);
}

function weightedSum2(out: Float32Array, a: Float32Array, wa: number, b: Float32Array, wb: number): void {
  for (let i = 0; i < out.length; i++) out[i] = wa * a[i]! + wb * b[i]!;
}

/**
 * Zero when every value of `a` is finite; NaN when one is NaN or infinite (`x * 0` is NaN for those).
 * Four running sums, so the additions do not wait on each other (twice as fast as one).
 */
export function nonFiniteProbe(a: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
  for (const end = a.length & ~3; i < end; i += 4) {
    s0 += a[i]! * 0;
    s1 += a[i + 1]! * 0;
    s2 += a[i + 2]! * 0;
    s3 += a[i + 3]! * 0;
  }
  for (; i < a.length; i++) s0 += a[i]! * 0;
  return s0 + s1 + s2 + s3;
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
  scaleFromZero(tiny, 0.5);
  addToScaled(tiny, tiny, 0.5);
  weightedSum(tiny, [tiny, tiny], [0.5, 0.5]);
  weightedSum(tiny, [tiny, tiny, tiny], [0.3, 0.3, 0.4]);
  nonFiniteProbe(tiny);
  firstNonFinite(Float32Array.of(0, NaN));
}
