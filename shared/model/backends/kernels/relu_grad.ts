/**
 * ReLU's gradient in one SIMD pass on the wasm heap (simd/heap_kernels.wat relu_grad), where tfjs's
 * registered gradient takes three kernels (Step, Cast, Multiply), each a pass and an allocation: ~1.7 ms
 * of a conv net's step at batch 64. The gradient registered here for `Relu` runs {@link RELU_GRAD} on a
 * backend that has it and tfjs's formula elsewhere; both give `dy · step(x)` with the same values.
 *
 * @module
 */
import type { KernelConfig, KernelFunc, TensorInfo } from "npm:@tensorflow/tfjs-core@4.22.0";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { util } from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset } from "../wasm_internals.ts";
import { heapKernelRuns, requireHeapKernels } from "./heap_simd.ts";

export const RELU_GRAD = "ShoalReluGrad";

/** The kernel for `backendName` (a wasm backend): `{ dy, x }` → `dx`, float32 of one shape. */
export function reluGradKernels(backendName: string): KernelConfig[] {
  const reluGrad: KernelFunc = ({ inputs, backend: b }) => {
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    if (dy.dtype !== "float32" || x.dtype !== "float32" || !util.arraysEqual(dy.shape, x.shape)) {
      throw new TypeError(
        `Cannot run ${RELU_GRAD} on ${dy.dtype} dy [${dy.shape}] and ${x.dtype} x [${x.shape}]: ` +
          "it takes float32 tensors of one shape",
      );
    }
    const [heap, simd] = requireHeapKernels(RELU_GRAD, b);
    const dx = heap.makeOutput([...x.shape], "float32");
    simd.relu_grad(
      heapOffset(heap, dy),
      heapOffset(heap, x),
      heapOffset(heap, dx),
      util.sizeFromShape(x.shape),
    );
    return dx;
  };
  return [{ kernelName: RELU_GRAD, backendName, kernelFunc: reluGrad }];
}

/**
 * `dy · step(x)`: ReLU's gradient at `x`, its input, or at its output (the same steps). The fused
 * kernel where it runs, tfjs's formula elsewhere.
 */
export function reluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return x.dtype === "float32" && heapKernelRuns(RELU_GRAD)
    ? tf.engine().runKernel(RELU_GRAD, { dy, x }, {}) as tf.Tensor
    : tf.mul(dy, tf.cast(tf.step(x), "float32"));
}

/** Registers `Relu`'s gradient as {@link reluGrad}. */
export function registerReluGradient(): void {
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      return { x: () => reluGrad(dy as tf.Tensor, x) };
    },
  });
}
