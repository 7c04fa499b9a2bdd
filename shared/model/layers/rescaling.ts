/**
 * `Rescaling`, Keras's preprocessing layer: `x * scale + offset`. Put first in a model fed with bytes
 * (image pixels as a `Uint8Array`), as `Rescaling(1 / 255)`, so the dataset stays bytes in memory and
 * each batch is scaled as it is computed.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export interface RescalingOptions extends LayerOptions {
  /** Added after scaling. @default 0 */
  offset?: number;
}

export class Rescaling extends Layer {
  readonly className = "Rescaling";
  readonly scale: number;
  readonly offset: number;

  constructor(scale: number, opts: RescalingOptions = {}) {
    super(opts);
    this.scale = scale;
    this.offset = opts.offset ?? 0;
    for (const [name, value] of [["scale", scale], ["offset", this.offset]] as const) {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new RangeError(
          `Cannot create a Rescaling layer as ${name} must be a finite number (e.g. 1 / 255): received ${name}=${value}`,
        );
      }
    }
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const y = tf.mul(inputs[0]!, tf.scalar(this.scale, "float32"));
    return this.offset === 0 ? y : tf.add(y, tf.scalar(this.offset, "float32"));
  }

  protected layerConfig(): Record<string, unknown> {
    return { scale: this.scale, offset: this.offset };
  }
}
