/**
 * Reading tensors back into one flat array the caller owns (a gradient buffer, a slot of shared
 * memory): on the wasm backend each tensor is copied once, straight from the wasm heap; elsewhere
 * through `dataSync`. `concat(...).dataSync()` would copy everything twice and allocate a fresh array
 * on every call.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset, heapView, wasmHeapOf } from "./wasm_internals.ts";
import { heapKernelsOf } from "./kernels/heap_simd.ts";
import { nonFiniteProbe } from "../vector.ts";

/** Copies the values of `tensors`, in order, into `out` from index `offset`; returns the index after them. */
export function readTensorsInto(tensors: readonly tf.Tensor[], out: Float32Array, offset = 0): number {
  const total = tensors.reduce((n, t) => n + t.size, 0);
  if (offset + total > out.length) {
    throw new RangeError(
      `Cannot read ${total} values into an array of ${out.length} from index ${offset}: ` +
        "give an array with room for every tensor",
    );
  }
  const heap = wasmHeapOf(tf.backend());
  let at = offset;
  for (const t of tensors) {
    if (t.dtype !== "float32") {
      throw new TypeError(`Cannot read a ${t.dtype} tensor into a Float32Array: cast it to float32 first`);
    }
    // A view of the heap is taken right before its copy: nothing allocates in between.
    out.set(heap ? heapView(heap, t) : t.dataSync() as Float32Array, at);
    at += t.size;
  }
  return at;
}

/**
 * Whether every value of `tensors` is finite. On the wasm backend the SIMD probe reads them where they
 * were computed (a quarter of the time of a JavaScript loop); elsewhere `copy`, the array they were
 * just read into, is probed.
 */
export function tensorsFinite(tensors: readonly tf.Tensor[], copy: Float32Array): boolean {
  const heap = wasmHeapOf(tf.backend());
  const simd = heap && heapKernelsOf(heap);
  if (!heap || !simd) return nonFiniteProbe(copy) === 0;
  return tensors.every((t) => simd.nonfinite_probe(heapOffset(heap, t), t.size) === 0);
}
