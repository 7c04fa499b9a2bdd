/**
 * `LayerNormalization` over the last axis: `(x - mean) / sqrt(variance + epsilon) * gamma + beta`, with
 * the mean and (biased) variance of each position's features. Per sample, so data-parallel slices
 * need no exchange. Weights `[gamma?, beta?]` (Keras order).
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import { Layer, type LayerOptions, type Shape, type WeightSpec } from "./layer.ts";

export interface LayerNormalizationOptions extends LayerOptions {
  /** Only the last axis is supported. @default -1 */
  axis?: number | number[];
  /** @default 0.001 */
  epsilon?: number;
  /** Learn `beta`. @default true */
  center?: boolean;
  /** Learn `gamma`. @default true */
  scale?: boolean;
  /** @default "zeros" */
  betaInitializer?: string;
  /** @default "ones" */
  gammaInitializer?: string;
  betaRegularizer?: Regularizer | null;
  gammaRegularizer?: Regularizer | null;
}

export class LayerNormalization extends Layer {
  readonly className = "LayerNormalization";
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly betaInitializer: InitializerName;
  readonly gammaInitializer: InitializerName;
  readonly betaRegularizer: Regularizer | null;
  readonly gammaRegularizer: Regularizer | null;

  constructor(opts: LayerNormalizationOptions = {}) {
    super(opts);
    const axis = opts.axis ?? -1;
    const axes = Array.isArray(axis) ? axis : [axis];
    if (axes.length !== 1 || axes[0] !== -1) {
      throw new RangeError(
        `Cannot create a LayerNormalization layer with axis=${JSON.stringify(axis)}: Shoal normalizes ` +
          "over the last axis only; use axis -1",
      );
    }
    this.epsilon = opts.epsilon ?? 1e-3;
    if (!(this.epsilon > 0)) {
      throw new RangeError(
        `Cannot create a LayerNormalization layer as epsilon must be > 0: received epsilon=${opts.epsilon}`,
      );
    }
    this.center = opts.center ?? true;
    this.scale = opts.scale ?? true;
    this.betaInitializer = resolveInitializer(opts.betaInitializer ?? "zeros");
    this.gammaInitializer = resolveInitializer(opts.gammaInitializer ?? "ones");
    this.betaRegularizer = opts.betaRegularizer ?? null;
    this.gammaRegularizer = opts.gammaRegularizer ?? null;
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const s = inputShapes[0]!;
    const shape = [s[s.length - 1]!];
    const specs: WeightSpec[] = [];
    if (this.scale) {
      specs.push({
        name: "gamma",
        shape,
        trainable: true,
        initializer: this.gammaInitializer,
        regularizer: this.gammaRegularizer,
      });
    }
    if (this.center) {
      specs.push({
        name: "beta",
        shape,
        trainable: true,
        initializer: this.betaInitializer,
        regularizer: this.betaRegularizer,
      });
    }
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    const { mean, variance } = tf.moments(x, [x.rank - 1], true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
    let i = 0;
    if (this.scale) y = tf.mul(y, weights[i++]!);
    if (this.center) y = tf.add(y, weights[i]!);
    return y;
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      axis: [-1],
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      rms_scaling: false,
      beta_initializer: initializerConfig(this.betaInitializer),
      gamma_initializer: initializerConfig(this.gammaInitializer),
      beta_regularizer: this.betaRegularizer?.toConfig() ?? null,
      gamma_regularizer: this.gammaRegularizer?.toConfig() ?? null,
      beta_constraint: null,
      gamma_constraint: null,
    };
  }
}
