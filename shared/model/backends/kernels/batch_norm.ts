/**
 * BatchNormalization's training passes as four kernels, SIMD on the wasm heap
 * (simd/heap_kernels.wat), where the layer otherwise chains ~20 stock kernels (means, squares,
 * broadcast subtractions and products, sums), each a pass and an allocation. Tensors are `[..., C]`,
 * rows first, with per-channel vectors of length C.
 *
 * - {@link BN_MOMENTS} `{ x }` → `[mean, squares]`: per channel the mean and the sum of squared
 *   deviations from it, in double precision.
 * - {@link BN_NORMALIZE} `{ x, mean, invStd, gamma, beta }` → `[xHat, y]`: `x̂ = (x − mean)·invStd`,
 *   `y = x̂·γ + β`, in f32 exactly as the composed operations compute them.
 * - {@link BN_GRAD_SUMS} `{ dy, xHat }` → `[Σdy, Σ(dy·x̂)]` per channel, summed in double precision.
 * - {@link BN_GRAD} `{ dy, xHat, a, b, gamma, invStd }` → `dx = (γ·invStd)·((dy − a) − x̂·b)`, in f32
 *   as the composed operations.
 *
 * The layer (layers/batch_normalization.ts) uses them when the active backend has them registered,
 * and composes stock operations elsewhere.
 *
 * @module
 */
import type { KernelConfig, KernelFunc, TensorInfo } from "npm:@tensorflow/tfjs-core@4.22.0";
import { util } from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset } from "../wasm_internals.ts";
import { heapKernelRuns, requireHeapKernels } from "./heap_simd.ts";

export const BN_MOMENTS = "ShoalBatchNormMoments";
export const BN_NORMALIZE = "ShoalBatchNormNormalize";
export const BN_GRAD_SUMS = "ShoalBatchNormGradSums";
export const BN_GRAD = "ShoalBatchNormGrad";

/** The channel count of `x` ([..., C]), after checking dtypes, `same` shapes and vector lengths. */
function channelsOf(kernel: string, x: TensorInfo, same: TensorInfo[], vectors: TensorInfo[]): number {
  const channels = x.shape.at(-1) ?? 0;
  for (const t of [x, ...same, ...vectors]) {
    if (t.dtype !== "float32") {
      throw new TypeError(`Cannot run ${kernel} on a ${t.dtype} tensor: it takes float32 tensors`);
    }
  }
  const other = same.find((t) => !util.arraysEqual(t.shape, x.shape));
  if (other) {
    throw new RangeError(`Cannot run ${kernel} on tensors of shapes [${x.shape}] and [${other.shape}]`);
  }
  const bad = vectors.find((v) => util.sizeFromShape(v.shape) !== channels);
  if (channels === 0 || bad) {
    throw new RangeError(
      `Cannot run ${kernel} on a tensor of shape [${x.shape}] with a vector of shape [${bad?.shape}]: ` +
        "the vectors must have one value per channel (the last axis)",
    );
  }
  return channels;
}

/**
 * Whether the layer can use the kernels on the active backend: they are registered for it and the
 * SIMD module binds its heap (not the threaded build's shared memory).
 */
export function batchNormKernelsAvailable(): boolean {
  return heapKernelRuns(BN_MOMENTS);
}

/** The four kernels for `backendName` (a wasm backend); see {@link batchNormKernelsAvailable}. */
export function batchNormKernels(backendName: string): KernelConfig[] {
  const rowsOf = (x: TensorInfo, channels: number) => util.sizeFromShape(x.shape) / channels;

  const moments: KernelFunc = ({ inputs, backend: b }) => {
    const { x } = inputs as { x: TensorInfo };
    const channels = channelsOf(BN_MOMENTS, x, [], []);
    const [heap, simd] = requireHeapKernels(BN_MOMENTS, b);
    const mean = heap.makeOutput([channels], "float32");
    const squares = heap.makeOutput([channels], "float32");
    const acc = heap.makeOutput([4 * channels], "float32");
    const at = (t: TensorInfo) => heapOffset(heap, t);
    simd.bn_moments(at(x), rowsOf(x, channels), channels, at(acc), at(mean), at(squares));
    heap.disposeData(acc.dataId);
    return [mean, squares];
  };

  const normalize: KernelFunc = ({ inputs, backend: b }) => {
    const { x, mean, invStd, gamma, beta } = inputs as Record<string, TensorInfo>;
    const channels = channelsOf(BN_NORMALIZE, x!, [], [mean!, invStd!, gamma!, beta!]);
    const [heap, simd] = requireHeapKernels(BN_NORMALIZE, b);
    const xHat = heap.makeOutput([...x!.shape], "float32");
    const y = heap.makeOutput([...x!.shape], "float32");
    const at = (t: TensorInfo) => heapOffset(heap, t);
    simd.bn_normalize(
      at(x!),
      rowsOf(x!, channels),
      channels,
      at(mean!),
      at(invStd!),
      at(gamma!),
      at(beta!),
      at(xHat),
      at(y),
    );
    return [xHat, y];
  };

  const gradSums: KernelFunc = ({ inputs, backend: b }) => {
    const { dy, xHat } = inputs as Record<string, TensorInfo>;
    const channels = channelsOf(BN_GRAD_SUMS, dy!, [xHat!], []);
    const [heap, simd] = requireHeapKernels(BN_GRAD_SUMS, b);
    const dBeta = heap.makeOutput([channels], "float32");
    const dGamma = heap.makeOutput([channels], "float32");
    const acc = heap.makeOutput([4 * channels], "float32");
    const at = (t: TensorInfo) => heapOffset(heap, t);
    simd.bn_grad_sums(at(dy!), at(xHat!), rowsOf(dy!, channels), channels, at(acc), at(dBeta), at(dGamma));
    heap.disposeData(acc.dataId);
    return [dBeta, dGamma];
  };

  const grad: KernelFunc = ({ inputs, backend: b }) => {
    const { dy, xHat, a, b: bVec, gamma, invStd } = inputs as Record<string, TensorInfo>;
    const channels = channelsOf(BN_GRAD, dy!, [xHat!], [a!, bVec!, gamma!, invStd!]);
    const [heap, simd] = requireHeapKernels(BN_GRAD, b);
    const dx = heap.makeOutput([...dy!.shape], "float32");
    const at = (t: TensorInfo) => heapOffset(heap, t);
    simd.bn_grad(
      at(dy!),
      at(xHat!),
      rowsOf(dy!, channels),
      channels,
      at(a!),
      at(bVec!),
      at(gamma!),
      at(invStd!),
      at(dx),
    );
    return dx;
  };

  return [
    { kernelName: BN_MOMENTS, backendName, kernelFunc: moments },
    { kernelName: BN_NORMALIZE, backendName, kernelFunc: normalize },
    { kernelName: BN_GRAD_SUMS, backendName, kernelFunc: gradSums },
    { kernelName: BN_GRAD, backendName, kernelFunc: grad },
  ];
}
