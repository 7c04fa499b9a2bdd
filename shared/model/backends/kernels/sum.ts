/**
 * `Sum` over the leading axes of a float32 tensor (the bias gradient of a convolution or dense layer)
 * as column sums (SIMD on the backend's heap, simd/heap_kernels.wat, else JavaScript), in double
 * precision. The stock wasm kernel first transposes the input so that the reduced axes are innermost, a
 * full copy that cost more than the sum. Other reductions go to the stock kernel.
 *
 * @module
 */
import {
  type KernelConfig,
  type KernelFunc,
  Sum,
  type SumAttrs,
  type TensorInfo,
  util,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset, heapView, wasmHeapBackend } from "../wasm_internals.ts";
import { heapKernelsOf } from "./heap_simd.ts";
import type { KernelContext } from "./kernel_context.ts";

/** Kernel config of `Sum` for `backendName`; needs the stock kernel for the cases it leaves alone. */
export function sumKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const stock = context.fallback(Sum);
  if (stock === undefined) return [];
  const sum: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as SumAttrs;
    const leading = leadingAxes(x.shape, util.parseAxisParam(axis, x.shape));
    if (x.dtype !== "float32" || leading === 0) return stock(args);
    const backend = wasmHeapBackend(args.backend);
    const kept = x.shape.slice(leading);
    const out = backend.makeOutput(
      keepDims ? [...x.shape.slice(0, leading).map(() => 1), ...kept] : kept,
      "float32",
    );
    const width = util.sizeFromShape(kept);
    const simd = heapKernelsOf(backend);
    if (simd) {
      // Double-precision accumulators, as many bytes as two floats per column.
      const acc = backend.makeOutput([2 * width], "float32");
      const rows = width === 0 ? 0 : util.sizeFromShape(x.shape) / width;
      simd.column_sums(
        heapOffset(backend, x),
        rows,
        width,
        heapOffset(backend, acc),
        heapOffset(backend, out),
      );
      backend.disposeData(acc.dataId);
    } else {
      columnSums(heapView(backend, x), width, heapView(backend, out));
    }
    return out;
  };
  return [{ kernelName: Sum, backendName, kernelFunc: sum }];
}

/** `k` when `axes` are exactly `0 .. k-1` and leave at least one axis, else 0. */
function leadingAxes(shape: readonly number[], axes: readonly number[]): number {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length >= shape.length) return 0;
  return sorted.every((a, i) => a === i) ? sorted.length : 0;
}

/** `out[j] = Σ_i x[i * width + j]`, accumulated in double precision. */
function columnSums(x: Float32Array, width: number, out: Float32Array): void {
  const total = new Float64Array(width);
  for (let row = 0; row < x.length; row += width) {
    for (let j = 0; j < width; j++) total[j] = total[j]! + x[row + j]!;
  }
  out.set(total);
}
