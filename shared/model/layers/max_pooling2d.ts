/** `MaxPooling2D` on channels-last images. */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export interface MaxPooling2DOptions extends LayerOptions {
  /** @default [2, 2] */
  poolSize?: number | [number, number];
  /** @default poolSize */
  strides?: number | [number, number] | null;
  /** @default "valid" */
  padding?: "valid" | "same";
}

export class MaxPooling2D extends Layer {
  readonly className = "MaxPooling2D";
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: "valid" | "same";

  constructor(opts: MaxPooling2DOptions = {}) {
    super(opts);
    const pair = (v: number | [number, number]): [number, number] => (typeof v === "number" ? [v, v] : v);
    this.poolSize = pair(opts.poolSize ?? 2);
    this.strides = pair(opts.strides ?? this.poolSize);
    this.padding = opts.padding ?? "valid";
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.expectRank(inputShapes[0]!, 4);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const [h, w, c] = inputShapes[0]!;
    const out = (size: number, i: 0 | 1) =>
      this.padding === "same"
        ? Math.ceil(size / this.strides[i])
        : Math.floor((size - this.poolSize[i]) / this.strides[i]) + 1;
    return [out(h!, 0), out(w!, 1), c!];
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return tf.maxPool(inputs[0] as tf.Tensor4D, this.poolSize, this.strides, this.padding);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      pool_size: this.poolSize,
      padding: this.padding,
      strides: this.strides,
      data_format: "channels_last",
    };
  }
}
