/**
 * `MaxPoolGrad` (NHWC) for the wasm backend: one pass over each pooling window that adds the window's
 * gradient onto the first largest input of the window (the `cpu` backend's rule), four channels at a
 * time in SIMD on the backend's heap (simd/heap_kernels.wat), or in JavaScript where that module cannot
 * bind the heap.
 * The stock wasm kernel recomputes every window's maximum once per input pixel and was half of a conv
 * net's training step.
 *
 * @module
 */
import {
  backend_util,
  type KernelConfig,
  type KernelFunc,
  MaxPoolGrad,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset, heapView, wasmHeapBackend } from "../wasm_internals.ts";
import { geometryOf } from "../../simd/heap_kernels.ts";
import { heapKernelsOf } from "./heap_simd.ts";
import type { KernelContext } from "./kernel_context.ts";

type Shape4 = [number, number, number, number];

/** Kernel config of `MaxPoolGrad` for `backendName`; float32 only, other dtypes go to the stock kernel. */
export function maxPoolGradKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const maxPoolGrad: KernelFunc = (args) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    if (dy.dtype !== "float32" || input.dtype !== "float32") {
      const stock = context.fallback(MaxPoolGrad);
      if (stock === undefined) {
        throw new TypeError(
          `Cannot run MaxPoolGrad as it supports float32 tensors only: current dtypes are ` +
            `${input.dtype} (input) and ${dy.dtype} (dy)`,
        );
      }
      return stock(args);
    }
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
    const info = backend_util.computePool2DInfo(
      input.shape as Shape4,
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const expected = info.outShape;
    if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== expected[i])) {
      throw new RangeError(
        `Cannot compute the max-pool gradient as dy must have shape [${expected}]: ` +
          `current shape is [${dy.shape}]`,
      );
    }
    const backend = wasmHeapBackend(args.backend);
    const dx = backend.makeOutput([...input.shape], "float32");
    const simd = heapKernelsOf(backend);
    if (simd) {
      simd.max_pool_grad(
        heapOffset(backend, input),
        heapOffset(backend, dy),
        heapOffset(backend, dx),
        info.batchSize,
        ...geometryOf(info),
      );
    } else {
      scatterMax(heapView(backend, input), heapView(backend, dy), heapView(backend, dx), info);
    }
    return dx;
  };
  return [{ kernelName: MaxPoolGrad, backendName, kernelFunc: maxPoolGrad }];
}

/**
 * `dx = 0`, then for each pooling window and channel `dx[argmax] += dy`, where `argmax` is the first
 * position (row-major) whose value is strictly larger than all before it; a window of only NaN or
 * `-Infinity` passes no gradient.
 */
export function scatterMax(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  info: backend_util.Conv2DInfo,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight, effectiveFilterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  // Per channel: the largest value so far and its index; channels innermost reads x in order.
  const best = new Float64Array(channels);
  const where = new Int32Array(channels);
  dx.fill(0);
  let out = 0;
  for (let b = 0; b < batchSize; b++) {
    const image = b * inHeight * inWidth * channels;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = Math.max(0, oy * strideHeight - top);
      const y1 = Math.min(inHeight, oy * strideHeight - top + effectiveFilterHeight);
      for (let ox = 0; ox < outWidth; ox++, out += channels) {
        const x0 = Math.max(0, ox * strideWidth - left);
        const x1 = Math.min(inWidth, ox * strideWidth - left + effectiveFilterWidth);
        best.fill(-Infinity);
        where.fill(-1);
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const pixel = image + (iy * inWidth + ix) * channels;
            for (let c = 0; c < channels; c++) {
              const v = x[pixel + c]!;
              const larger = v > best[c]!;
              best[c] = larger ? v : best[c]!;
              where[c] = larger ? pixel + c : where[c]!;
            }
          }
        }
        for (let c = 0; c < channels; c++) {
          const at = where[c]!;
          if (at >= 0) dx[at] = dx[at]! + dy[out + c]!;
        }
      }
    }
  }
}
