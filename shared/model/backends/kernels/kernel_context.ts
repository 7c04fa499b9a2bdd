import type { KernelFunc } from "npm:@tensorflow/tfjs-core@4.22.0";
import type { Blas } from "../blas.ts";

/** What a BLAS kernel factory needs: the library, and the stock kernel to delegate unsupported cases to. */
export interface KernelContext {
  readonly blas: Blas;
  /** The stock wasm kernel of `kernelName`, or `undefined` when the wasm backend has none. */
  fallback(kernelName: string): KernelFunc | undefined;
}
