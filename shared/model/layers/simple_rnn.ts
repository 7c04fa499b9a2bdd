/** `SimpleRNN`: `h = activation(x · kernel + h · recurrent_kernel + bias)`. */
import { tf } from "../tf.ts";
import { Recurrent, type RecurrentOptions, type StepStates } from "./recurrent.ts";

export class SimpleRNN<S extends boolean = boolean> extends Recurrent<S> {
  readonly className = "SimpleRNN";
  protected readonly gates = 1;

  constructor(units: number, opts: RecurrentOptions & { returnState?: S } = {}) {
    super("SimpleRNN", units, opts);
  }

  copyWith(changes: { name: string; goBackwards: boolean }): SimpleRNN<S> {
    return new SimpleRNN<S>(this.units, {
      ...(this.options as RecurrentOptions & { returnState?: S }),
      ...changes,
    });
  }

  protected step(projected: tf.Tensor2D, states: StepStates, recurrentKernel: tf.Tensor2D): StepStates {
    return [this.act(tf.add(projected, tf.matMul(states[0] as tf.Tensor2D, recurrentKernel)))];
  }

  protected layerConfig(): Record<string, unknown> {
    return this.recurrentConfig();
  }
}
