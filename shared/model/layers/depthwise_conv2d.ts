/**
 * `DepthwiseConv2D` on channels-last images: each input channel is convolved with its own
 * `depthMultiplier` filters, `activation(depthwise_conv2d(x, kernel) + bias)`, kernel `[height, width,
 * channels, depthMultiplier]`, output channel `c·depthMultiplier + m`. {@link DepthwiseBase} holds the
 * window settings it shares with `SeparableConv2D`.
 */
import { tf } from "../tf.ts";
import { initializerConfig } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import {
  type CallContext,
  formatShape,
  KernelLayer,
  type KernelLayerOptions,
  type Shape,
  type WeightSpec,
} from "./layer.ts";

export interface DepthwiseConv2DOptions
  extends Omit<KernelLayerOptions, "kernelInitializer" | "kernelRegularizer"> {
  /** @default 1 */
  strides?: number | [number, number];
  /** @default "valid" */
  padding?: "valid" | "same";
  /** Filters per input channel. @default 1 */
  depthMultiplier?: number;
  /** @default 1 */
  dilationRate?: number | [number, number];
  /** @default "glorot_uniform" */
  depthwiseInitializer?: string;
  /** @default null */
  depthwiseRegularizer?: Regularizer | null;
}

/**
 * The depthwise step of `DepthwiseConv2D` and `SeparableConv2D`: window size, strides, padding,
 * dilation and depth multiplier, checked as Keras checks them. The depthwise kernel's initializer and
 * regularizer are the base's `kernelInitializer` and `kernelRegularizer`.
 */
export abstract class DepthwiseBase extends KernelLayer {
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: "valid" | "same";
  readonly depthMultiplier: number;
  readonly dilationRate: [number, number];

  constructor(className: string, kernelSize: number | [number, number], opts: DepthwiseConv2DOptions) {
    super({
      ...opts,
      kernelInitializer: opts.depthwiseInitializer ?? "glorot_uniform",
      kernelRegularizer: opts.depthwiseRegularizer ?? null,
    });
    const pair = (v: number | [number, number], what: string): [number, number] => {
      const p: [number, number] = typeof v === "number" ? [v, v] : v;
      if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d > 0)) {
        throw new RangeError(
          `Cannot create a ${className} layer as ${what} must be a positive integer or two: received ` +
            `${what}=${JSON.stringify(v)}`,
        );
      }
      return [p[0], p[1]];
    };
    this.kernelSize = pair(kernelSize, "kernelSize");
    this.strides = pair(opts.strides ?? 1, "strides");
    this.dilationRate = pair(opts.dilationRate ?? 1, "dilationRate");
    this.depthMultiplier = opts.depthMultiplier ?? 1;
    if (!Number.isInteger(this.depthMultiplier) || this.depthMultiplier <= 0) {
      throw new RangeError(
        `Cannot create a ${className} layer as depthMultiplier must be a positive integer: received ` +
          `depthMultiplier=${opts.depthMultiplier}`,
      );
    }
    this.padding = opts.padding ?? "valid";
    if (this.padding !== "valid" && this.padding !== "same") {
      throw new TypeError(
        `Cannot create a ${className} layer as padding must be "valid" or "same": received ${opts.padding}`,
      );
    }
    if (Math.max(...this.strides) > 1 && Math.max(...this.dilationRate) > 1) {
      throw new RangeError(
        `Cannot create a ${className} layer with both strides=[${this.strides}] and dilationRate=` +
          `[${this.dilationRate}] above 1: use one or the other`,
      );
    }
  }

  override checkInputs(inputShapes: Shape[]): void {
    const s = inputShapes[0]!;
    this.expectRank(s, 4, {
      dims: "batch, height, width, channels",
      fix: "Reshape images to [n, height, width, channels], e.g. x.reshape([-1, 28, 28, 1]).",
    });
    const channels = this.weightSpecs[0]?.shape[2];
    if (this.built && s[2] !== channels) {
      throw new RangeError(
        `Input 0 of layer "${this.name}" is incompatible with the layer: expected axis -1 of input shape to have ` +
          `value ${channels}, but received input with shape ${formatShape(s)}`,
      );
    }
  }

  /** The depthwise kernel's spec for images of `channels` channels. */
  protected depthwiseSpec(name: string, channels: number): WeightSpec {
    return {
      name,
      shape: [...this.kernelSize, channels, this.depthMultiplier],
      trainable: true,
      initializer: this.kernelInitializer,
      regularizer: this.kernelRegularizer,
    };
  }

  /** Height and width of the output for an input of `inputShape` (`[height, width, channels]`). */
  protected spatialOutputShape(inputShape: Shape): [number, number] {
    const out = (size: number, i: 0 | 1) => {
      if (this.padding === "same") return Math.ceil(size / this.strides[i]);
      const k = (this.kernelSize[i] - 1) * this.dilationRate[i] + 1;
      return Math.floor((size - k) / this.strides[i]) + 1;
    };
    return [out(inputShape[0]!, 0), out(inputShape[1]!, 1)];
  }

  /**
   * The depthwise convolution. A dilated window runs as an undilated one over the kernel with zeros
   * between its taps (the same products), since tfjs differentiates only undilated depthwise
   * convolutions.
   */
  protected depthwise(x: tf.Tensor4D, kernel: tf.Tensor4D): tf.Tensor4D {
    const [dh, dw] = this.dilationRate;
    const k = dh > 1 || dw > 1 ? dilateKernel(kernel, dh, dw) : kernel;
    return tf.depthwiseConv2d(x, k, this.strides, this.padding, "NHWC");
  }

  /** Keras's config entries of the window settings, in its order. */
  protected windowConfig(): Record<string, unknown> {
    return {
      kernel_size: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      data_format: "channels_last",
      dilation_rate: this.dilationRate,
    };
  }
}

/** `kernel` `[h, w, c, m]` with `dh - 1` rows and `dw - 1` columns of zeros between its taps. */
function dilateKernel(kernel: tf.Tensor4D, dh: number, dw: number): tf.Tensor4D {
  const [h, w, c, m] = kernel.shape;
  let k: tf.Tensor = kernel;
  if (dh > 1) {
    const spaced = tf.pad(tf.reshape(k, [h, 1, w * c * m]), [[0, 0], [0, dh - 1], [0, 0]]);
    k = tf.slice(tf.reshape(spaced, [h * dh, w, c, m]), 0, (h - 1) * dh + 1);
  }
  const height = k.shape[0]!;
  if (dw > 1) {
    const spaced = tf.pad(tf.reshape(k, [height, w, 1, c * m]), [[0, 0], [0, 0], [0, dw - 1], [0, 0]]);
    k = tf.slice(tf.reshape(spaced, [height, w * dw, c, m]), [0, 0, 0, 0], [height, (w - 1) * dw + 1, c, m]);
  }
  return k as tf.Tensor4D;
}

export class DepthwiseConv2D extends DepthwiseBase {
  readonly className = "DepthwiseConv2D";

  constructor(kernelSize: number | [number, number], opts: DepthwiseConv2DOptions = {}) {
    super("DepthwiseConv2D", kernelSize, opts);
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const channels = inputShapes[0]![2]!;
    const specs = [this.depthwiseSpec("kernel", channels)];
    if (this.useBias) {
      specs.push({
        name: "bias",
        shape: [channels * this.depthMultiplier],
        trainable: true,
        initializer: this.biasInitializer,
        regularizer: this.biasRegularizer,
      });
    }
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return [...this.spatialOutputShape(inputShapes[0]!), inputShapes[0]![2]! * this.depthMultiplier];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const z = this.depthwise(inputs[0] as tf.Tensor4D, weights[0] as tf.Tensor4D);
    return this.biasAndActivation(z, weights, ctx);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      depth_multiplier: this.depthMultiplier,
      ...this.windowConfig(),
      activation: this.activation,
      use_bias: this.useBias,
      depthwise_initializer: initializerConfig(this.kernelInitializer),
      bias_initializer: initializerConfig(this.biasInitializer),
      depthwise_regularizer: this.kernelRegularizer?.toConfig() ?? null,
      bias_regularizer: this.biasRegularizer?.toConfig() ?? null,
      activity_regularizer: null,
      depthwise_constraint: null,
      bias_constraint: null,
    };
  }
}
