/**
 * Combining the slices of one step. The rule: every slice reports the gradient of its own mean loss
 * (plus regularization) and its sample count; the step's gradient is the sample-weighted mean
 * Σ nₖ·gₖ / Σ nₖ, summed in slice order (never arrival order) so a run is reproducible. BatchNorm
 * statistics combine exactly: the batch mean and the biased batch variance of all rows together.
 */
import { type GradSquares, type SliceResult, sumRowSquares, weightedSum } from "../shared/model/mod.ts";

export interface ReducedStep {
  count: number;
  grads: Float32Array;
  lossSum: number;
  metricSums: number[];
  regLoss: number;
  batchStats: { layer: string; mean: Float32Array; variance: Float32Array }[];
  /** Sparse gradients' per-row squares, of the step's mean loss: Σ (nₖ/N)²·squaresₖ, on the rows any slice looked up. */
  gradSquares?: GradSquares[];
}

/**
 * Reduces the slices of one step. `into`, when given and of the gradient's length, receives the
 * reduced gradient (a caller that reduces every step keeps one buffer instead of allocating one).
 */
export function reduceSlices(slices: readonly SliceResult[], into?: Float32Array): ReducedStep {
  if (slices.length === 0) throw new RangeError("Cannot reduce a step with no slices");
  const first = slices[0]!;
  if (slices.length === 1) return { ...first };
  const count = slices.reduce((n, s) => n + s.count, 0);
  const grads = into?.length === first.grads.length ? into : new Float32Array(first.grads.length);
  weightedSum(grads, slices.map((s) => s.grads), slices.map((s) => s.count / count));
  const batchStats = first.batchStats.map((stat, k) => {
    const mean = new Float32Array(stat.mean.length);
    const meanSq = new Float64Array(stat.mean.length);
    for (const s of slices) {
      const w = s.count / count;
      const b = s.batchStats[k]!;
      for (let c = 0; c < mean.length; c++) {
        mean[c] = mean[c]! + w * b.mean[c]!;
        meanSq[c] = meanSq[c]! + w * (b.variance[c]! + b.mean[c]! * b.mean[c]!);
      }
    }
    const variance = new Float32Array(mean.length);
    for (let c = 0; c < mean.length; c++) variance[c] = Math.max(0, meanSq[c]! - mean[c]! * mean[c]!);
    return { layer: stat.layer, mean, variance };
  });
  return {
    count,
    grads,
    lossSum: slices.reduce((n, s) => n + s.lossSum, 0),
    metricSums: first.metricSums.map((_, i) => slices.reduce((n, s) => n + s.metricSums[i]!, 0)),
    regLoss: first.regLoss,
    batchStats,
    ...(first.gradSquares ? { gradSquares: reduceSquares(slices, count) } : {}),
  };
}

/**
 * A slice's sparse gradient is of its own mean loss, so each of its row slices is nₖ/N of that
 * slice's share of the step's gradient, and its squares (nₖ/N)² of their share. The step's rows are
 * the union of the slices' rows; each row's terms are added in slice order, as over dense tables.
 */
function reduceSquares(slices: readonly SliceResult[], count: number): GradSquares[] {
  return slices[0]!.gradSquares!.map((entry, k) => {
    const parts = slices.map((s) => {
      const part = s.gradSquares?.[k];
      if (part?.offset !== entry.offset || part.size !== entry.size || part.rowSize !== entry.rowSize) {
        throw new RangeError(
          `Cannot reduce the sparse gradient at offset ${entry.offset} as a slice reports another layout`,
        );
      }
      return part;
    });
    const weights = slices.map((s) => (s.count / count) ** 2);
    return {
      offset: entry.offset,
      size: entry.size,
      rowSize: entry.rowSize,
      ...sumRowSquares(parts, entry.rowSize, weights),
    };
  });
}
