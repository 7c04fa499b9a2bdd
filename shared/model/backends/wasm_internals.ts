/**
 * The parts of tfjs-backend-wasm that are not its public API, in one place: a backend instance's wasm
 * heap (`wasm.HEAPF32`) and its tensor table (`dataIdMap`), which the BLAS kernels read and write in
 * place. The shapes named here are those of the pinned release, {@link TFJS_WASM_VERSION};
 * wasm_internals_test.ts checks the installed version and these shapes, so an upgrade fails there,
 * loudly, and nowhere else.
 *
 * @module
 */
import type { DataId, DataType, TensorInfo } from "npm:@tensorflow/tfjs-core@4.22.0";
import { util } from "npm:@tensorflow/tfjs-core@4.22.0";

/** The tfjs-backend-wasm (and tfjs-core) release whose internals this module names. */
export const TFJS_WASM_VERSION = "4.22.0";

/** The parts of `BackendWasm` the BLAS kernels read and write. */
export interface WasmHeapBackend {
  readonly wasm: { readonly HEAPF32: Float32Array };
  readonly dataIdMap: { get(dataId: DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** Frees a tensor's memory once no tensor refers to it (a kernel's scratch). */
  disposeData(dataId: DataId): boolean;
}

/** The backend as a {@link WasmHeapBackend}, or undefined when it has no wasm heap (cpu, webgl). */
export function wasmHeapOf(backend: unknown): WasmHeapBackend | undefined {
  const b = backend as Partial<WasmHeapBackend> | null;
  return b?.wasm?.HEAPF32 instanceof Float32Array && typeof b.dataIdMap?.get === "function" &&
      typeof b.makeOutput === "function" && typeof b.disposeData === "function"
    ? b as WasmHeapBackend
    : undefined;
}

/**
 * The kernel's backend as a {@link WasmHeapBackend}; throws, naming the pinned release, when it lacks
 * the heap or the tensor table (another backend, or a tfjs-backend-wasm whose internals changed).
 */
export function wasmHeapBackend(backend: unknown): WasmHeapBackend {
  const heap = wasmHeapOf(backend);
  if (heap === undefined) {
    throw new TypeError(
      "Cannot run a wasm-blas kernel as its backend has no wasm.HEAPF32, dataIdMap and makeOutput: the " +
        `kernels read the internals of @tensorflow/tfjs-backend-wasm@${TFJS_WASM_VERSION}; install that ` +
        "release or select another backend",
    );
  }
  return heap;
}

/**
 * A `Float32Array` view of `tensor` on the wasm heap. Take views only after the last allocation of the
 * kernel (`makeOutput` included): heap growth detaches the buffer under older views.
 */
export function heapView(backend: WasmHeapBackend, tensor: TensorInfo): Float32Array {
  const data = backend.dataIdMap.get(tensor.dataId);
  if (data === undefined) {
    throw new Error(
      `Cannot read a ${tensor.dtype} tensor of shape [${tensor.shape}] as it is not on this wasm backend: ` +
        "move it with tf.setBackend before calling the kernel",
    );
  }
  const heap = backend.wasm.HEAPF32;
  const start = data.memoryOffset >>> 2;
  return heap.subarray(start, start + util.sizeFromShape(tensor.shape));
}

/** The byte offset of `tensor` on the wasm heap (where {@link heapView} starts). */
export function heapOffset(backend: WasmHeapBackend, tensor: TensorInfo): number {
  return heapView(backend, tensor).byteOffset;
}

/**
 * The `WebAssembly.Memory` behind the backend's heap (`wasm.asm.memory` of the Emscripten module), for
 * kernels of another wasm module that import it; undefined when the backend does not expose it or it
 * is not the memory under `HEAPF32`.
 */
export function wasmMemoryOf(backend: WasmHeapBackend): WebAssembly.Memory | undefined {
  const memory = (backend.wasm as { asm?: { memory?: unknown } }).asm?.memory;
  return memory instanceof WebAssembly.Memory && memory.buffer === backend.wasm.HEAPF32.buffer
    ? memory
    : undefined;
}
