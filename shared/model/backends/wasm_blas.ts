/**
 * The `wasm-blas` backend: the tfjs `wasm` backend with its matrix-multiply and 2-D convolution kernels
 * replaced by OpenBLAS `cblas_sgemm` calls (Deno FFI) that read and write the wasm heap in place.
 * It also brings `Conv2DBackpropFilter`, which the stock wasm backend lacks, and a JavaScript
 * `MaxPoolGrad` that is an order of magnitude faster than the stock one, and `UnsortedSegmentSum`
 * (the gradient of `gather`, so of Embedding), which the stock wasm backend lacks.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { type Blas, openBlas, type OpenBlasOptions } from "./blas.ts";
import { conv2dKernels } from "./kernels/conv2d.ts";
import type { KernelContext } from "./kernels/kernel_context.ts";
import { matMulKernels } from "./kernels/matmul.ts";
import { maxPoolGradKernels } from "./kernels/max_pool_grad.ts";
import { depthwiseConv2dGradKernels } from "./kernels/depthwise_conv2d_grad.ts";
import { sliceKernels } from "./kernels/slice.ts";
import { sumKernels } from "./kernels/sum.ts";
import { tileKernels } from "./kernels/tile.ts";
import { identityKernels } from "./kernels/identity.ts";
import { batchNormKernels } from "./kernels/batch_norm.ts";
import { registerReluGradient, reluGradKernels } from "./kernels/relu_grad.ts";
import { unsortedSegmentSumKernels } from "./kernels/unsorted_segment_sum.ts";

/** Name under which {@link registerWasmBlasBackend} registers the backend. */
export const WASM_BLAS = "wasm-blas";

/** Options of {@link registerWasmBlasBackend}. */
export interface WasmBlasOptions {
  /** How to find and configure OpenBLAS. */
  blas?: OpenBlasOptions;
  /**
   * Backend priority given to `tf.registerBackend`; tfjs only uses it when no backend was set.
   * @default 0 (below the stock `wasm` and `cpu` backends, so importing this module changes nothing)
   */
  priority?: number;
}

/** The backend to use after {@link registerWasmBlasBackend}, and why, when it is not `wasm-blas`. */
export interface WasmBlasRegistration {
  readonly name: "wasm-blas" | "wasm";
  /** One line saying why `wasm-blas` is not available, when `name` is `wasm`. */
  readonly notice?: string;
}

/**
 * Directory (with a trailing slash) that holds `tfjs-backend-wasm.wasm`, derived from where the
 * `@tensorflow/tfjs-backend-wasm` import resolves (its `dist/` folder).
 */
export function wasmBinaryDirectory(): string {
  const entry = new URL(import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0"));
  if (entry.protocol !== "file:") {
    throw new Error(
      `Cannot locate tfjs-backend-wasm.wasm as @tensorflow/tfjs-backend-wasm resolves to ${entry.href}, ` +
        `not a local file: set "nodeModulesDir": "auto" in deno.json and run deno install`,
    );
  }
  return decodeURIComponent(new URL("./", entry).pathname);
}

/**
 * Points the stock `wasm` backend at its binary, and registers `wasm-blas`: a backend whose factory
 * builds a fresh `wasm` backend instance and whose kernels are the stock wasm kernels with
 * `BatchMatMul`, `_FusedMatMul`, `Conv2D`, `FusedConv2D`, `Conv2DBackpropInput` and
 * `Conv2DBackpropFilter` replaced, and JavaScript `Tile`, `MaxPoolGrad`, the depthwise convolution's
 * gradients and (over leading axes) `Sum`.
 * Safe to call more than once.
 *
 * Returns `{ name: "wasm" , notice }` without registering anything when OpenBLAS cannot be opened.
 * Select the backend afterwards with `tf.setBackend(result.name)`.
 */
export function registerWasmBlasBackend(options: WasmBlasOptions = {}): Promise<WasmBlasRegistration> {
  setWasmPaths(wasmBinaryDirectory());
  if (tf.findBackendFactory(WASM_BLAS) !== null) return Promise.resolve({ name: WASM_BLAS });
  const opened = openBlas(options.blas);
  if (opened.blas === null) {
    return Promise.resolve({ name: "wasm", notice: `wasm-blas unavailable, using wasm: ${opened.reason}` });
  }
  registerKernels(opened.blas);
  const wasmFactory = tf.findBackendFactory("wasm");
  if (wasmFactory === null) {
    throw new Error(
      "Cannot register wasm-blas as the wasm backend is not registered: import @tensorflow/tfjs-backend-wasm",
    );
  }
  tf.registerBackend(WASM_BLAS, () => wasmFactory(), options.priority ?? 0);
  return Promise.resolve({ name: WASM_BLAS });
}

function registerKernels(blas: Blas): void {
  const stock = new Map(tf.getKernelsForBackend("wasm").map((config) => [config.kernelName, config]));
  const context: KernelContext = { blas, fallback: (name) => stock.get(name)?.kernelFunc };
  const replaced = new Map(
    [
      ...matMulKernels(WASM_BLAS, context),
      ...conv2dKernels(WASM_BLAS, context),
      ...tileKernels(WASM_BLAS, context),
      ...sliceKernels(WASM_BLAS, context),
      ...maxPoolGradKernels(WASM_BLAS, context),
      ...depthwiseConv2dGradKernels(WASM_BLAS, context),
      ...sumKernels(WASM_BLAS, context),
      ...unsortedSegmentSumKernels(WASM_BLAS),
      ...identityKernels(WASM_BLAS, context),
      ...batchNormKernels(WASM_BLAS),
      ...reluGradKernels(WASM_BLAS),
    ].map((config) => [
      config.kernelName,
      config,
    ]),
  );
  registerReluGradient();
  // Registering again (after tf.removeBackend) replaces the kernels bound to an earlier library.
  for (const config of tf.getKernelsForBackend(WASM_BLAS)) tf.unregisterKernel(config.kernelName, WASM_BLAS);
  for (const config of stock.values()) {
    if (!replaced.has(config.kernelName)) tf.registerKernel({ ...config, backendName: WASM_BLAS });
  }
  for (const config of replaced.values()) {
    const original = stock.get(config.kernelName);
    // The stock setup binds the wasm functions that a fallback to the stock kernel calls.
    tf.registerKernel({
      ...config,
      ...(original?.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
      ...(original?.disposeFunc === undefined ? {} : { disposeFunc: original.disposeFunc }),
    });
  }
}
