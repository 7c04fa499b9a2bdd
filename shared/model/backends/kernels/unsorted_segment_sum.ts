/**
 * `UnsortedSegmentSum` for the wasm backend in JavaScript on the wasm heap. The stock wasm backend has
 * none, and `gather`'s gradient (an Embedding's) needs it: `out[segmentIds[i], ...] += x[i, ...]`.
 *
 * @module
 */
import type {
  KernelConfig,
  KernelFunc,
  NamedTensorInfoMap,
  TensorInfo,
  UnsortedSegmentSumAttrs,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { UnsortedSegmentSum, util } from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapView, wasmHeapBackend } from "../wasm_internals.ts";

/** Kernel config of `UnsortedSegmentSum` for `backendName` (float32 values, int32 segment ids). */
export function unsortedSegmentSumKernels(backendName: string): KernelConfig[] {
  const kernelFunc: KernelFunc = (args) => {
    const { x, segmentIds } = args.inputs as NamedTensorInfoMap & { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as unknown as UnsortedSegmentSumAttrs;
    if (x.dtype !== "float32" || segmentIds.dtype !== "int32") {
      throw new TypeError(
        `Cannot run UnsortedSegmentSum on wasm with x of dtype ${x.dtype} and segmentIds of dtype ` +
          `${segmentIds.dtype}: pass float32 values and int32 ids`,
      );
    }
    const idsRank = segmentIds.shape.length;
    if (!segmentIds.shape.every((d, i) => d === x.shape[i])) {
      throw new RangeError(
        `Cannot run UnsortedSegmentSum as segmentIds' shape [${segmentIds.shape}] must start x's shape [${x.shape}]`,
      );
    }
    const backend = wasmHeapBackend(args.backend);
    const inner = x.shape.slice(idsRank);
    const out = backend.makeOutput([numSegments, ...inner], "float32");
    // Views only after the last allocation: makeOutput may grow (and detach) the heap.
    const idsView = heapView(backend, { ...segmentIds, dtype: "float32" });
    segmentSumInto(
      heapView(backend, x),
      new Int32Array(idsView.buffer, idsView.byteOffset, idsView.length),
      util.sizeFromShape(inner),
      heapView(backend, out),
    );
    return out;
  };
  return [{ kernelName: UnsortedSegmentSum, backendName, kernelFunc }];
}

/**
 * Adds each row of `x` (`rowSize` values) into row `ids[i]` of `out`, which starts zeroed here. Ids
 * outside `[0, out rows)` are skipped, as TensorFlow does.
 */
export function segmentSumInto(x: Float32Array, ids: Int32Array, rowSize: number, out: Float32Array): void {
  out.fill(0);
  const rows = out.length / rowSize;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= rows) continue;
    const src = i * rowSize;
    const dst = id * rowSize;
    for (let k = 0; k < rowSize; k++) out[dst + k]! += x[src + k]!;
  }
}
