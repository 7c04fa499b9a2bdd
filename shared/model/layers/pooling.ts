/**
 * Local pooling on channels-last inputs: `MaxPooling1D` and `AveragePooling1D` over `[steps,
 * channels]`, `MaxPooling2D` and `AveragePooling2D` over `[height, width, channels]`.
 * The 1-D layers run as 2-D pooling over a height of one. Average pooling with "same" padding divides
 * by the number of positions inside the input, as Keras does.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export interface Pooling1DOptions extends LayerOptions {
  /** @default 2 */
  poolSize?: number | [number];
  /** @default poolSize */
  strides?: number | [number] | null;
  /** @default "valid" */
  padding?: "valid" | "same";
}

export interface Pooling2DOptions extends LayerOptions {
  /** @default [2, 2] */
  poolSize?: number | [number, number];
  /** @default poolSize */
  strides?: number | [number, number] | null;
  /** @default "valid" */
  padding?: "valid" | "same";
}

function sizes(className: string, what: string, v: number | number[], rank: number): number[] {
  const list = typeof v === "number" ? Array.from({ length: rank }, () => v) : [...v];
  if (list.length !== rank || !list.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(
      `Cannot create a ${className} layer as ${what} must be ${
        rank === 1 ? "a positive integer" : "positive integers"
      }: ` +
        `received ${what}=${JSON.stringify(v)}`,
    );
  }
  return list;
}

abstract class Pooling extends Layer {
  readonly poolSize: number[];
  readonly strides: number[];
  readonly padding: "valid" | "same";
  protected abstract readonly rank: 1 | 2;

  constructor(
    className: string,
    rank: 1 | 2,
    opts: Pooling1DOptions | Pooling2DOptions,
  ) {
    super(opts);
    this.poolSize = sizes(className, "poolSize", opts.poolSize ?? 2, rank);
    this.strides = opts.strides === null || opts.strides === undefined
      ? [...this.poolSize]
      : sizes(className, "strides", opts.strides, rank);
    this.padding = opts.padding ?? "valid";
    if (this.padding !== "valid" && this.padding !== "same") {
      throw new TypeError(
        `Cannot create a ${className} layer as padding must be "valid" or "same": received ${opts.padding}`,
      );
    }
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.expectRank(inputShapes[0]!, this.rank + 2);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const s = inputShapes[0]!;
    const spatial = s.slice(0, -1).map((size, i) =>
      this.padding === "same"
        ? Math.ceil(size / this.strides[i]!)
        : Math.floor((size - this.poolSize[i]!) / this.strides[i]!) + 1
    );
    return [...spatial, s[s.length - 1]!];
  }

  protected pool(x: tf.Tensor, kind: "max" | "avg"): tf.Tensor {
    const op = kind === "max" ? tf.maxPool : tf.avgPool;
    if (this.rank === 2) {
      return op(
        x as tf.Tensor4D,
        this.poolSize as [number, number],
        this.strides as [number, number],
        this.padding,
      );
    }
    const [b, steps, channels] = x.shape as [number, number, number];
    const y = op(
      tf.reshape(x, [b, 1, steps, channels]) as tf.Tensor4D,
      [1, this.poolSize[0]!],
      [1, this.strides[0]!],
      this.padding,
    );
    return tf.reshape(y, [b, y.shape[2], channels]);
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

/** `MaxPooling1D`: the maximum over windows of `poolSize` steps. */
export class MaxPooling1D extends Pooling {
  readonly className = "MaxPooling1D";
  protected readonly rank = 1;

  constructor(opts: Pooling1DOptions = {}) {
    super("MaxPooling1D", 1, opts);
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return this.pool(inputs[0]!, "max");
  }
}

/** `AveragePooling1D`: the mean over windows of `poolSize` steps. */
export class AveragePooling1D extends Pooling {
  readonly className = "AveragePooling1D";
  protected readonly rank = 1;

  constructor(opts: Pooling1DOptions = {}) {
    super("AveragePooling1D", 1, opts);
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return this.pool(inputs[0]!, "avg");
  }
}

/** Options of {@link MaxPooling2D}. */
export type MaxPooling2DOptions = Pooling2DOptions;

/** `MaxPooling2D`: the maximum over `poolSize` windows of an image. */
export class MaxPooling2D extends Pooling {
  readonly className = "MaxPooling2D";
  protected readonly rank = 2;

  constructor(opts: MaxPooling2DOptions = {}) {
    super("MaxPooling2D", 2, opts);
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return this.pool(inputs[0]!, "max");
  }
}

/** `AveragePooling2D`: the mean over `poolSize` windows of an image. */
export class AveragePooling2D extends Pooling {
  readonly className = "AveragePooling2D";
  protected readonly rank = 2;

  constructor(opts: Pooling2DOptions = {}) {
    super("AveragePooling2D", 2, opts);
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return this.pool(inputs[0]!, "avg");
  }
}
