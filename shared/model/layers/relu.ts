/**
 * `ReLU` as a layer, with Keras's arguments: `x` for `x >= threshold` (capped at `maxValue`), and
 * `negativeSlope * (x - threshold)` below the threshold.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export interface ReLUOptions extends LayerOptions {
  /** Upper bound of the output; null for none. @default null */
  maxValue?: number | null;
  /** Slope below the threshold. @default 0 */
  negativeSlope?: number;
  /** @default 0 */
  threshold?: number;
}

export class ReLU extends Layer {
  readonly className = "ReLU";
  readonly maxValue: number | null;
  readonly negativeSlope: number;
  readonly threshold: number;

  constructor(opts: ReLUOptions = {}) {
    super(opts);
    this.maxValue = opts.maxValue ?? null;
    this.negativeSlope = opts.negativeSlope ?? 0;
    this.threshold = opts.threshold ?? 0;
    if (this.maxValue !== null && !(this.maxValue >= 0)) {
      throw new RangeError(
        `Cannot create a ReLU layer as maxValue must be >= 0 or null: received maxValue=${opts.maxValue}`,
      );
    }
    if (!(this.negativeSlope >= 0)) {
      throw new RangeError(
        `Cannot create a ReLU layer as negativeSlope must be >= 0: received negativeSlope=${opts.negativeSlope}`,
      );
    }
    if (!Number.isFinite(this.threshold)) {
      throw new RangeError(
        `Cannot create a ReLU layer as threshold must be a finite number: received threshold=${opts.threshold}`,
      );
    }
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    let y: tf.Tensor;
    if (this.threshold === 0 && this.negativeSlope === 0) y = tf.relu(x);
    else {
      const below = this.negativeSlope === 0
        ? tf.zerosLike(x)
        : tf.mul(tf.sub(x, this.threshold), this.negativeSlope);
      y = tf.where(tf.greaterEqual(x, this.threshold), x, below);
    }
    return this.maxValue === null ? y : tf.minimum(y, this.maxValue);
  }

  protected layerConfig(): Record<string, unknown> {
    return { max_value: this.maxValue, negative_slope: this.negativeSlope, threshold: this.threshold };
  }
}
