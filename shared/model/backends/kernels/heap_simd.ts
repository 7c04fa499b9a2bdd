/**
 * The SIMD heap kernels (simd/heap_kernels.wat) as the wasm-blas kernels reach them: bound to a
 * backend's heap, or required by a kernel that has no JavaScript path, or asked whether a registered
 * kernel can run on the active backend.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { type WasmHeapBackend, wasmHeapBackend, wasmHeapOf, wasmMemoryOf } from "../wasm_internals.ts";
import { type HeapKernels, heapKernelsFor } from "../../simd/heap_kernels.ts";

/** The SIMD kernels bound to `backend`'s heap; undefined where its memory cannot be imported. */
export function heapKernelsOf(backend: WasmHeapBackend): HeapKernels | undefined {
  const memory = wasmMemoryOf(backend);
  return memory && heapKernelsFor(memory);
}

/** A kernel's backend and the SIMD kernels on its heap; throws naming `kernel` when they cannot bind. */
export function requireHeapKernels(kernel: string, backend: unknown): [WasmHeapBackend, HeapKernels] {
  const heap = wasmHeapBackend(backend);
  const simd = heapKernelsOf(heap);
  if (!simd) throw new TypeError(`Cannot run ${kernel}: the SIMD kernels cannot bind the wasm heap`);
  return [heap, simd];
}

/**
 * Whether kernel `name` runs on the active backend: it is registered there and the SIMD kernels bind
 * the backend's heap (not the threaded build's shared memory).
 */
export function heapKernelRuns(name: string): boolean {
  if (tf.getKernel(name, tf.getBackend()) === undefined) return false;
  const heap = wasmHeapOf(tf.backend());
  return heap !== undefined && heapKernelsOf(heap) !== undefined;
}
