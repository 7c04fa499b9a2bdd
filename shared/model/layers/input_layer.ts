/** `InputLayer` and `Input`, the entry points of a model. */
import type { tf } from "../tf.ts";
import { Layer, type Node, type Shape, SymbolicTensor } from "./layer.ts";

/** The layer behind an {@link Input}: it only declares the per-sample shape. */
export class InputLayer extends Layer {
  readonly className = "InputLayer";
  readonly shape: Shape;

  constructor(opts: { shape: number[]; name?: string }) {
    super(opts.name ? { name: opts.name } : {});
    for (const d of opts.shape) {
      if (!Number.isInteger(d) || d <= 0) {
        throw new RangeError(
          `Cannot create an Input as every dimension of shape must be a positive integer: received shape [${opts.shape}]`,
        );
      }
    }
    this.shape = [...opts.shape];
    this.built = true;
  }

  computeOutputShape(): Shape {
    return this.shape;
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    return inputs[0]!;
  }

  protected layerConfig(): Record<string, unknown> {
    return {};
  }

  override getConfig(): Record<string, unknown> {
    return {
      batch_shape: [null, ...this.shape],
      dtype: "float32",
      sparse: false,
      ragged: false,
      name: this.name,
    };
  }
}

/**
 * A model input (Keras `keras.Input`): `const a = new Input({ shape: [10], name: "numeric" })`.
 * It is a symbolic tensor that layers can be applied to.
 */
export class Input extends SymbolicTensor {
  constructor(opts: { shape: number[]; name?: string }) {
    const layer = new InputLayer(opts);
    const node: Node = { layer, inputs: [], index: 0, output: undefined!, outputs: [] };
    super(layer.shape, node);
    node.output = this;
    node.outputs = [this];
    layer.inboundNodes.push(node);
  }
}
