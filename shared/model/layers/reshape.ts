/** `Reshape`: gives each sample the per-sample `targetShape`; one entry may be -1 (inferred). */
import { tf } from "../tf.ts";
import { formatShape, Layer, type LayerOptions, type Shape, sizeOf } from "./layer.ts";

export class Reshape extends Layer {
  readonly className = "Reshape";
  readonly targetShape: number[];

  constructor(targetShape: number[], opts: LayerOptions = {}) {
    super(opts);
    const unknown = targetShape.filter((d) => d === -1).length;
    if (
      !Array.isArray(targetShape) || unknown > 1 ||
      !targetShape.every((d) => d === -1 || (Number.isInteger(d) && d > 0))
    ) {
      throw new RangeError(
        `Cannot create a Reshape layer as targetShape must be positive integers with at most one -1: ` +
          `received ${JSON.stringify(targetShape)}`,
      );
    }
    this.targetShape = [...targetShape];
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const size = sizeOf(inputShapes[0]!);
    const known = sizeOf(this.targetShape.filter((d) => d !== -1));
    const out = this.targetShape.map((d) => (d === -1 ? size / known : d));
    if (sizeOf(out) !== size || !out.every(Number.isInteger)) {
      throw new RangeError(
        `Cannot reshape input of shape ${
          formatShape(inputShapes[0]!)
        } (${size} values per sample) in layer ` +
          `"${this.name}" to targetShape ${JSON.stringify(this.targetShape)}: the sizes must match`,
      );
    }
    return out;
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.computeOutputShape(inputShapes);
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    return tf.reshape(x, [x.shape[0]!, ...this.targetShape]);
  }

  protected layerConfig(): Record<string, unknown> {
    return { target_shape: this.targetShape };
  }
}
