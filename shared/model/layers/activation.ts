/** `Activation`: applies a named activation. */
import type { tf } from "../tf.ts";
import { type ActivationName, applyActivation, resolveActivation } from "../activations.ts";
import { type CallContext, Layer, type LayerOptions, type Shape } from "./layer.ts";

export class Activation extends Layer {
  readonly className = "Activation";
  readonly activation: ActivationName;

  constructor(activation: string, opts: LayerOptions = {}) {
    super(opts);
    this.activation = resolveActivation(activation);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[], _weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const x = inputs[0]!;
    if ((this.activation === "softmax" || this.activation === "sigmoid") && this.name) {
      ctx.logits.set(this.name, { tensor: x, activation: this.activation });
    }
    return applyActivation(this.activation, x);
  }

  protected layerConfig(): Record<string, unknown> {
    return { activation: this.activation };
  }
}
