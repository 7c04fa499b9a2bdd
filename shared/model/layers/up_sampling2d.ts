/**
 * `UpSampling2D` with "nearest" interpolation: repeats each row `size[0]` times and each column
 * `size[1]` times. Done by broadcasting, so the gradient is a sum over the repeats.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export class UpSampling2D extends Layer {
  readonly className = "UpSampling2D";
  readonly size: [number, number];

  constructor(opts: LayerOptions & { size?: number | [number, number]; interpolation?: "nearest" } = {}) {
    super(opts);
    const s = opts.size ?? 2;
    const size: [number, number] = typeof s === "number" ? [s, s] : s;
    if (size.length !== 2 || !size.every((d) => Number.isInteger(d) && d > 0)) {
      throw new RangeError(
        `Cannot create an UpSampling2D layer as size must be a positive integer or two: received ${
          JSON.stringify(s)
        }`,
      );
    }
    if ((opts.interpolation ?? "nearest") !== "nearest") {
      throw new TypeError(
        `Cannot create an UpSampling2D layer with interpolation=${JSON.stringify(opts.interpolation)}: ` +
          'Shoal supports "nearest" only',
      );
    }
    this.size = size;
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.expectRank(inputShapes[0]!, 4);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const [h, w, c] = inputShapes[0]!;
    return [h! * this.size[0], w! * this.size[1], c!];
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    const [b, h, w, c] = x.shape as [number, number, number, number];
    const [sh, sw] = this.size;
    const repeated = tf.mul(tf.reshape(x, [b, h, 1, w, 1, c]), tf.ones([1, 1, sh, 1, sw, 1]));
    return tf.reshape(repeated, [b, h * sh, w * sw, c]);
  }

  protected layerConfig(): Record<string, unknown> {
    return { size: this.size, data_format: "channels_last", interpolation: "nearest" };
  }
}
