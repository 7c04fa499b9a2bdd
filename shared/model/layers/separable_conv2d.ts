/**
 * `SeparableConv2D` on channels-last images: a depthwise convolution (each input channel with its own
 * `depthMultiplier` filters) followed by a 1×1 pointwise convolution that mixes the channels into
 * `filters`, then `activation(· + bias)`. Weights in Keras's order: `depthwise_kernel [height, width,
 * channels, depthMultiplier]`, `pointwise_kernel [1, 1, channels·depthMultiplier, filters]`, `bias`.
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import type { CallContext, Shape, WeightSpec } from "./layer.ts";
import { DepthwiseBase, type DepthwiseConv2DOptions } from "./depthwise_conv2d.ts";

export interface SeparableConv2DOptions extends DepthwiseConv2DOptions {
  /** @default "glorot_uniform" */
  pointwiseInitializer?: string;
  /** @default null */
  pointwiseRegularizer?: Regularizer | null;
}

export class SeparableConv2D extends DepthwiseBase {
  readonly className = "SeparableConv2D";
  readonly filters: number;
  readonly pointwiseInitializer: InitializerName;
  readonly pointwiseRegularizer: Regularizer | null;

  constructor(filters: number, kernelSize: number | [number, number], opts: SeparableConv2DOptions = {}) {
    super("SeparableConv2D", kernelSize, opts);
    if (!Number.isInteger(filters) || filters <= 0) {
      throw new RangeError(
        `Cannot create a SeparableConv2D layer as filters must be a positive integer: received filters=${filters}`,
      );
    }
    this.filters = filters;
    this.pointwiseInitializer = resolveInitializer(opts.pointwiseInitializer ?? "glorot_uniform");
    this.pointwiseRegularizer = opts.pointwiseRegularizer ?? null;
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const channels = inputShapes[0]![2]!;
    const specs: WeightSpec[] = [
      this.depthwiseSpec("depthwise_kernel", channels),
      {
        name: "pointwise_kernel",
        shape: [1, 1, channels * this.depthMultiplier, this.filters],
        trainable: true,
        initializer: this.pointwiseInitializer,
        regularizer: this.pointwiseRegularizer,
      },
    ];
    if (this.useBias) {
      specs.push({
        name: "bias",
        shape: [this.filters],
        trainable: true,
        initializer: this.biasInitializer,
        regularizer: this.biasRegularizer,
      });
    }
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return [...this.spatialOutputShape(inputShapes[0]!), this.filters];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const [depthwiseKernel, pointwiseKernel] = weights as [tf.Tensor4D, tf.Tensor4D];
    const spread = this.depthwise(inputs[0] as tf.Tensor4D, depthwiseKernel);
    const z = tf.conv2d(spread, pointwiseKernel, 1, "valid", "NHWC");
    // The bias and activation tail reads the bias second: skip the depthwise kernel.
    return this.biasAndActivation(z, weights.slice(1), ctx);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      depth_multiplier: this.depthMultiplier,
      filters: this.filters,
      ...this.windowConfig(),
      activation: this.activation,
      use_bias: this.useBias,
      depthwise_initializer: initializerConfig(this.kernelInitializer),
      pointwise_initializer: initializerConfig(this.pointwiseInitializer),
      bias_initializer: initializerConfig(this.biasInitializer),
      depthwise_regularizer: this.kernelRegularizer?.toConfig() ?? null,
      pointwise_regularizer: this.pointwiseRegularizer?.toConfig() ?? null,
      bias_regularizer: this.biasRegularizer?.toConfig() ?? null,
      activity_regularizer: null,
      depthwise_constraint: null,
      pointwise_constraint: null,
      bias_constraint: null,
    };
  }
}
