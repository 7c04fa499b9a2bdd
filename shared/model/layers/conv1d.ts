/**
 * `Conv1D` on channels-last sequences `[steps, channels]`: `activation(conv1d(x, kernel) + bias)`, kernel
 * `[kernelSize, inChannels, filters]`. It runs as a 2-D convolution over a height of one, so it uses the
 * backend's 2-D convolution kernels; "causal" padding pads the start of the sequence only.
 */
import { tf } from "../tf.ts";
import {
  type CallContext,
  formatShape,
  kernelAndBias,
  KernelLayer,
  type KernelLayerOptions,
  type Shape,
  type WeightSpec,
} from "./layer.ts";

export interface Conv1DOptions extends KernelLayerOptions {
  /** @default 1 */
  strides?: number | [number];
  /** @default "valid" */
  padding?: "valid" | "same" | "causal";
  /** @default 1 */
  dilationRate?: number | [number];
}

function single(v: number | number[], what: string): number {
  const n = Array.isArray(v) ? (v.length === 1 ? v[0]! : NaN) : v;
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(
      `Cannot create a Conv1D layer as ${what} must be a positive integer: received ${JSON.stringify(v)}`,
    );
  }
  return n;
}

export class Conv1D extends KernelLayer {
  readonly className = "Conv1D";
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: "valid" | "same" | "causal";
  readonly dilationRate: number;

  constructor(filters: number, kernelSize: number | [number], opts: Conv1DOptions = {}) {
    super(opts);
    this.filters = single(filters, "filters");
    this.kernelSize = single(kernelSize, "kernelSize");
    this.strides = single(opts.strides ?? 1, "strides");
    this.dilationRate = single(opts.dilationRate ?? 1, "dilationRate");
    this.padding = opts.padding ?? "valid";
    if (!["valid", "same", "causal"].includes(this.padding)) {
      throw new TypeError(
        `Cannot create a Conv1D layer as padding must be "valid", "same" or "causal": received ${opts.padding}`,
      );
    }
    if (this.strides > 1 && this.dilationRate > 1) {
      throw new RangeError(
        `Cannot create a Conv1D layer with both strides=${this.strides} and dilationRate=${this.dilationRate} ` +
          "above 1: use one or the other",
      );
    }
  }

  override checkInputs(inputShapes: Shape[]): void {
    const s = inputShapes[0]!;
    this.expectRank(s, 3, {
      dims: "batch, steps, channels",
      fix: `Reshape sequences to [n, steps, channels], e.g. x.reshape([-1, ${s[0] ?? "steps"}, 1]).`,
    });
    if (this.built && s[1] !== this.weightSpecs[0]!.shape[1]) {
      throw new RangeError(
        `Input 0 of layer "${this.name}" is incompatible with the layer: expected axis -1 of input shape to have ` +
          `value ${this.weightSpecs[0]!.shape[1]}, but received input with shape ${formatShape(s)}`,
      );
    }
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    return kernelAndBias([this.kernelSize, inputShapes[0]![1]!, this.filters], this.filters, this);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const steps = inputShapes[0]![0]!;
    if (this.padding !== "valid") return [Math.ceil(steps / this.strides), this.filters];
    const k = (this.kernelSize - 1) * this.dilationRate + 1;
    return [Math.floor((steps - k) / this.strides) + 1, this.filters];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    let x = inputs[0]!;
    if (this.padding === "causal") {
      x = tf.pad(x, [[0, 0], [(this.kernelSize - 1) * this.dilationRate, 0], [0, 0]]);
    }
    const [b, steps, channels] = x.shape as [number, number, number];
    const kernel = weights[0]!;
    const z4 = tf.conv2d(
      tf.reshape(x, [b, 1, steps, channels]) as tf.Tensor4D,
      tf.expandDims(kernel, 0) as tf.Tensor4D,
      [1, this.strides],
      this.padding === "same" ? "same" : "valid",
      "NHWC",
      [1, this.dilationRate],
    );
    return this.biasAndActivation(tf.reshape(z4, [b, z4.shape[2], this.filters]), weights, ctx);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      filters: this.filters,
      kernel_size: [this.kernelSize],
      strides: [this.strides],
      padding: this.padding,
      data_format: "channels_last",
      dilation_rate: [this.dilationRate],
      groups: 1,
      ...this.kernelConfig(),
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    };
  }
}
