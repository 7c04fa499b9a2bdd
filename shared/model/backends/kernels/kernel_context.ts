import type { KernelFunc } from "@tensorflow/tfjs-core";
import type { Blas } from "../blas.ts";

/** What a BLAS kernel factory needs: the library, and the stock kernel to delegate unsupported cases to. */
export interface KernelContext {
  readonly blas: Blas;
  /** The stock wasm kernel of `kernelName`, or `undefined` when the wasm backend has none. */
  fallback(kernelName: string): KernelFunc | undefined;
}
