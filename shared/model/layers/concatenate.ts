/** `Concatenate`: joins its inputs along an axis (default the last). */
import { tf } from "../tf.ts";
import { formatShape, Layer, type LayerOptions, type Shape } from "./layer.ts";

export class Concatenate extends Layer {
  readonly className = "Concatenate";
  readonly axis: number;

  constructor(opts: LayerOptions & { axis?: number } = {}) {
    super(opts);
    this.axis = opts.axis ?? -1;
  }

  override checkInputs(inputShapes: Shape[]): void {
    if (inputShapes.length < 2) {
      throw new RangeError(
        `A Concatenate layer should be called on a list of at least 2 inputs: received ${inputShapes.length}`,
      );
    }
    const rank = inputShapes[0]!.length;
    const axis = this.axis < 0 ? rank + this.axis : this.axis - 1;
    for (const s of inputShapes) {
      const same = s.length === rank && s.every((d, i) => i === axis || d === inputShapes[0]![i]);
      if (!same) {
        throw new RangeError(
          `A Concatenate layer requires inputs with matching shapes except for the concatenation axis: ` +
            `received ${inputShapes.map(formatShape).join(", ")}`,
        );
      }
    }
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const rank = inputShapes[0]!.length;
    const axis = this.axis < 0 ? rank + this.axis : this.axis - 1;
    const out = [...inputShapes[0]!];
    out[axis] = inputShapes.reduce((n, s) => n + s[axis]!, 0);
    return out;
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return tf.concat(inputs, this.axis);
  }

  protected layerConfig(): Record<string, unknown> {
    return { axis: this.axis };
  }
}
