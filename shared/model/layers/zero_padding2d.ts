/** `ZeroPadding2D`: adds rows and columns of zeros around channels-last images. */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Keras's forms: `n` on all sides; `[h, w]` symmetric; `[[top, bottom], [left, right]]`. */
export type Padding2D = number | [number, number] | [[number, number], [number, number]];

export class ZeroPadding2D extends Layer {
  readonly className = "ZeroPadding2D";
  /** `[[top, bottom], [left, right]]`. */
  readonly padding: [[number, number], [number, number]];

  constructor(opts: LayerOptions & { padding?: Padding2D } = {}) {
    super(opts);
    const p = opts.padding ?? 1;
    const pairs = typeof p === "number"
      ? [[p, p], [p, p]]
      : Array.isArray(p[0])
      ? p as [[number, number], [number, number]]
      : [[p[0], p[0]], [p[1], p[1]]];
    if (pairs.length !== 2 || !pairs.flat().every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw new RangeError(
        "Cannot create a ZeroPadding2D layer as padding must be an integer >= 0, [h, w] or " +
          `[[top, bottom], [left, right]]: received ${JSON.stringify(p)}`,
      );
    }
    this.padding = pairs as [[number, number], [number, number]];
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.expectRank(inputShapes[0]!, 4);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const [h, w, c] = inputShapes[0]!;
    const [[t, b], [l, r]] = this.padding;
    return [h! + t + b, w! + l + r, c!];
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return tf.pad(inputs[0]!, [[0, 0], ...this.padding, [0, 0]]);
  }

  protected layerConfig(): Record<string, unknown> {
    return { padding: this.padding, data_format: "channels_last" };
  }
}
