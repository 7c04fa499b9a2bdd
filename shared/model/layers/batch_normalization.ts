/**
 * `BatchNormalization` over the last axis. In training, unless frozen, it normalizes with the batch statistics and
 * reports them ({@link BatchStats}); the moving averages are updated where the statistics of all slices
 * meet (the coordinator): `moving = moving * momentum + batch * (1 - momentum)`, as Keras.
 */
import { tf } from "../tf.ts";
import { type CallContext, Layer, type LayerOptions, type Shape, type WeightSpec } from "./layer.ts";

export interface BatchNormalizationOptions extends LayerOptions {
  /** @default 0.99 */
  momentum?: number;
  /** @default 0.001 */
  epsilon?: number;
  /** @default true */
  center?: boolean;
  /** @default true */
  scale?: boolean;
}

export class BatchNormalization extends Layer {
  readonly className = "BatchNormalization";
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;

  constructor(opts: BatchNormalizationOptions = {}) {
    super(opts);
    this.momentum = opts.momentum ?? 0.99;
    this.epsilon = opts.epsilon ?? 1e-3;
    this.center = opts.center ?? true;
    this.scale = opts.scale ?? true;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(
        `Cannot create BatchNormalization as momentum must be in [0, 1]: received ${this.momentum}`,
      );
    }
    if (!(this.epsilon > 0)) {
      throw new RangeError(
        `Cannot create BatchNormalization as epsilon must be > 0: received ${this.epsilon}`,
      );
    }
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const channels = inputShapes[0]![inputShapes[0]!.length - 1]!;
    const spec = (name: string, trainable: boolean, init: "ones" | "zeros"): WeightSpec => ({
      name,
      shape: [channels],
      trainable,
      initializer: init,
      regularizer: null,
    });
    const specs: WeightSpec[] = [];
    if (this.scale) specs.push(spec("gamma", true, "ones"));
    if (this.center) specs.push(spec("beta", true, "zeros"));
    specs.push(spec("moving_mean", false, "zeros"), spec("moving_variance", false, "ones"));
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const x = inputs[0]!;
    let i = 0;
    const gamma = this.scale ? weights[i++] : undefined;
    const beta = this.center ? weights[i++] : undefined;
    const movingMean = weights[i++]!;
    const movingVariance = weights[i++]!;
    // Keras 3: a frozen BatchNormalization layer (trainable false) runs in inference mode.
    if (!ctx.training || !this.trainable) {
      return tf.batchNorm(x, movingMean, movingVariance, beta, gamma, this.epsilon);
    }
    const axes = x.shape.map((_, k) => k).slice(0, -1);
    const { mean, variance } = tf.moments(x, axes);
    ctx.batchStats.push({ layer: this.name!, mean: tf.keep(mean), variance: tf.keep(variance) });
    return tf.batchNorm(x, mean, variance, beta, gamma, this.epsilon);
  }

  protected layerConfig(): Record<string, unknown> {
    const init = (cls: string) => ({
      module: "keras.initializers",
      class_name: cls,
      config: {},
      registered_name: null,
    });
    return {
      axis: -1,
      momentum: this.momentum,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      beta_initializer: init("Zeros"),
      gamma_initializer: init("Ones"),
      moving_mean_initializer: init("Zeros"),
      moving_variance_initializer: init("Ones"),
      beta_regularizer: null,
      gamma_regularizer: null,
      beta_constraint: null,
      gamma_constraint: null,
      synchronized: false,
    };
  }
}
