/**
 * `Identity` for the wasm backend: the output shares the input's memory (one more reference), as the
 * cpu backend's does and as the wasm backend's own `Reshape` does. Tensors are immutable and every
 * kernel writes only its own outputs, so nothing can change the shared values. The stock wasm kernel
 * copies the values instead; autodiff calls it for every tensor it saves for the backward pass (43
 * copies per step of the chapter's MLP, ~0.4 ms at batch 64).
 *
 * @module
 */
import type {
  KernelConfig,
  KernelFunc,
  NamedTensorInfoMap,
  TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { Identity } from "npm:@tensorflow/tfjs-core@4.22.0";
import type { KernelContext } from "./kernel_context.ts";

/** Kernel config of `Identity` for `backendName`: numeric tensors shared, strings on the stock kernel. */
export function identityKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const identity: KernelFunc = (args) => {
    const { x } = args.inputs as NamedTensorInfoMap & { x: TensorInfo };
    const backend = args.backend as { incRef?: (dataId: TensorInfo["dataId"]) => void };
    if (x.dtype === "string" || typeof backend.incRef !== "function") {
      const stock = context.fallback(Identity);
      if (stock === undefined) {
        throw new TypeError(`Cannot run Identity on a ${x.dtype} tensor: no stock kernel`);
      }
      return stock(args);
    }
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
  return [{ kernelName: Identity, backendName, kernelFunc: identity }];
}
