/**
 * Global pooling on channels-last inputs: the mean (`GlobalAveragePooling1D/2D`) or maximum
 * (`GlobalMaxPooling1D/2D`) over all steps or pixels, per channel. `keepdims` keeps the pooled axes
 * with size 1.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

export interface GlobalPoolingOptions extends LayerOptions {
  /** Keep the pooled axes with size 1. @default false */
  keepdims?: boolean;
}

abstract class GlobalPooling extends Layer {
  readonly keepdims: boolean;
  protected abstract readonly rank: 1 | 2;
  protected abstract readonly kind: "max" | "avg";

  constructor(opts: GlobalPoolingOptions = {}) {
    super(opts);
    this.keepdims = opts.keepdims ?? false;
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.expectRank(inputShapes[0]!, this.rank + 2);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const s = inputShapes[0]!;
    const channels = s[s.length - 1]!;
    return this.keepdims ? [...s.slice(0, -1).map(() => 1), channels] : [channels];
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const axes = this.rank === 1 ? [1] : [1, 2];
    return this.kind === "max"
      ? tf.max(inputs[0]!, axes, this.keepdims)
      : tf.mean(inputs[0]!, axes, this.keepdims);
  }

  protected layerConfig(): Record<string, unknown> {
    return { data_format: "channels_last", keepdims: this.keepdims };
  }
}

/** `GlobalAveragePooling1D`: the mean over steps. */
export class GlobalAveragePooling1D extends GlobalPooling {
  readonly className = "GlobalAveragePooling1D";
  protected readonly rank = 1;
  protected readonly kind = "avg";
}

/** `GlobalAveragePooling2D`: the mean over height and width. */
export class GlobalAveragePooling2D extends GlobalPooling {
  readonly className = "GlobalAveragePooling2D";
  protected readonly rank = 2;
  protected readonly kind = "avg";
}

/** `GlobalMaxPooling1D`: the maximum over steps. */
export class GlobalMaxPooling1D extends GlobalPooling {
  readonly className = "GlobalMaxPooling1D";
  protected readonly rank = 1;
  protected readonly kind = "max";
}

/** `GlobalMaxPooling2D`: the maximum over height and width. */
export class GlobalMaxPooling2D extends GlobalPooling {
  readonly className = "GlobalMaxPooling2D";
  protected readonly rank = 2;
  protected readonly kind = "max";
}
