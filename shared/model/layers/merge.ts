/**
 * Keras's element-wise merge layers: `Add`, `Subtract`, `Multiply` and `Average` combine inputs of the
 * same shape (Subtract: exactly two). They have no weights and no arguments besides the common ones.
 */
import { tf } from "../tf.ts";
import { formatShape, Layer, type LayerOptions, type Shape } from "./layer.ts";

abstract class Merge extends Layer {
  /** How many inputs the layer takes: at least two, or exactly two. */
  protected readonly exactlyTwo: boolean = false;

  constructor(opts: LayerOptions = {}) {
    super(opts);
  }

  override checkInputs(inputShapes: Shape[]): void {
    const count = inputShapes.length;
    if (this.exactlyTwo ? count !== 2 : count < 2) {
      throw new RangeError(
        `A ${this.className} layer should be called on ${
          this.exactlyTwo ? "exactly 2 inputs" : "a list of at least 2 inputs"
        }: received ${count} input(s). Pass them as a list: layer.apply([a, b])`,
      );
    }
    const first = inputShapes[0]!;
    for (const s of inputShapes) {
      if (s.length !== first.length || s.some((d, i) => d !== first[i])) {
        throw new RangeError(
          `A ${this.className} layer requires inputs of the same shape: received ` +
            `${inputShapes.map(formatShape).join(", ")}. Reshape or project the inputs to one shape first`,
        );
      }
    }
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  protected layerConfig(): Record<string, unknown> {
    return {};
  }
}

/** `Add`: the sum of its inputs. */
export class Add extends Merge {
  readonly className = "Add";

  call(inputs: tf.Tensor[]): tf.Tensor {
    return inputs.length === 2 ? tf.add(inputs[0]!, inputs[1]!) : tf.addN(inputs);
  }
}

/** `Subtract`: its first input minus its second. */
export class Subtract extends Merge {
  readonly className = "Subtract";
  protected override readonly exactlyTwo = true;

  call(inputs: tf.Tensor[]): tf.Tensor {
    return tf.sub(inputs[0]!, inputs[1]!);
  }
}

/** `Multiply`: the element-wise product of its inputs. */
export class Multiply extends Merge {
  readonly className = "Multiply";

  call(inputs: tf.Tensor[]): tf.Tensor {
    return inputs.slice(1).reduce((a, b) => tf.mul(a, b), inputs[0]!);
  }
}

/** `Average`: the element-wise mean of its inputs. */
export class Average extends Merge {
  readonly className = "Average";

  call(inputs: tf.Tensor[]): tf.Tensor {
    const sum = inputs.length === 2 ? tf.add(inputs[0]!, inputs[1]!) : tf.addN(inputs);
    return tf.div(sum, inputs.length);
  }
}
