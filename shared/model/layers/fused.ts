/**
 * Dense and Conv2D with their bias and ReLU in one kernel, also while a gradient is recorded.
 *
 * `tf.fused.matMul` and `tf.fused.conv2d` fall back to three kernels (product, bias add, ReLU) whenever
 * the tape is on: each a pass over the output, an allocation and a saved tensor. These ops run the
 * backend's fused kernel under a name of their own, whose registered gradient is written out: ReLU's
 * gradient at the output (the same steps as at its input), then the same product kernels and bias sum
 * that tfjs's separate ops' gradients run, so the values are the same. Like every registered gradient,
 * an input's gradient is computed only when the tape needs it (not the model input's).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { reluGrad } from "../backends/kernels/relu_grad.ts";

/** The activations fused here. */
export type FusedActivation = "relu" | "linear";

const FUSED_DENSE = "ShoalFusedDense";
const FUSED_CONV2D = "ShoalFusedConv2D";

/** The gradient before the activation, from the activation's output `y`. */
function preActivation(dy: tf.Tensor, y: tf.Tensor, activation: FusedActivation): tf.Tensor {
  return activation === "relu" ? reluGrad(dy, y) : dy;
}

tf.registerGradient({
  kernelName: FUSED_DENSE,
  inputsToSave: ["a", "b"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, kernel, y] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor];
    // Computed here, once: each input's gradient below runs in a scope of its own that keeps only its
    // result. It lives until the backward pass ends.
    const d = preActivation(dy as tf.Tensor, y, (attrs as { activation: FusedActivation }).activation);
    return {
      a: () => tf.matMul(d, kernel, false, true),
      b: () => tf.matMul(x, d, true, false),
      bias: () => tf.sum(d, 0),
    };
  },
});

tf.registerGradient({
  kernelName: FUSED_CONV2D,
  inputsToSave: ["x", "filter"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor];
    const { activation, ...conv } = attrs as unknown as {
      activation: FusedActivation;
      strides: [number, number];
      pad: "valid" | "same";
      dataFormat: "NHWC";
    };
    const d = preActivation(dy as tf.Tensor, y, activation);
    const attrsOf = (extra: Record<string, unknown>) => ({ ...conv, ...extra }) as unknown as tf.NamedAttrMap;
    return {
      x: () =>
        tf.engine().runKernel(
          tf.Conv2DBackpropInput,
          { dy: d, filter },
          attrsOf({ inputShape: x.shape }),
        ) as tf.Tensor,
      filter: () =>
        tf.engine().runKernel(
          tf.Conv2DBackpropFilter,
          { x, dy: d },
          attrsOf({ filterShape: filter.shape }),
        ) as tf.Tensor,
      bias: () => tf.sum(d, [0, 1, 2]),
    };
  },
});

/**
 * Runs `name` on the current backend: the backend's own `fused` kernel under our name, registered
 * the first time this backend runs it.
 */
function runFused(name: string, fused: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor {
  const backendName = tf.getBackend();
  if (!tf.getKernel(name, backendName)) {
    const kernel = tf.getKernel(fused, backendName);
    if (!kernel) throw new Error(`Cannot run ${name} as backend ${backendName} has no ${fused} kernel`);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: kernel.kernelFunc });
  }
  return tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;
}

/** `activation(x · kernel + bias)` for a batch of rows. */
export function fusedDense(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias: tf.Tensor | undefined,
  activation: FusedActivation,
): tf.Tensor2D {
  return runFused(FUSED_DENSE, tf._FusedMatMul, { a: x, b: kernel, ...(bias ? { bias } : {}) }, {
    transposeA: false,
    transposeB: false,
    activation,
  }) as tf.Tensor2D;
}

/** Options of {@link fusedConv2d}: an undilated NHWC convolution. */
export interface FusedConv2dOptions {
  strides: [number, number];
  pad: "valid" | "same";
  activation: FusedActivation;
}

/** `activation(conv2d(x, filter) + bias)`, NHWC, undilated. */
export function fusedConv2d(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor | undefined,
  opts: FusedConv2dOptions,
): tf.Tensor4D {
  return runFused(FUSED_CONV2D, tf.FusedConv2D, { x, filter, ...(bias ? { bias } : {}) }, {
    strides: opts.strides,
    pad: opts.pad,
    dataFormat: "NHWC",
    dilations: [1, 1],
    activation: opts.activation,
  }) as tf.Tensor4D;
}
