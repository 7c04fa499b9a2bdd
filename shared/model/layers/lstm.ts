/**
 * `LSTM` (Hochreiter & Schmidhuber), as Keras computes it: gates in kernel order input, forget, cell,
 * output; `c = f·c + i·activation(z_c)`, `h = o·activation(c)`.
 */
import { tf } from "../tf.ts";
import { type ActivationName, applyActivation, resolveActivation } from "../activations.ts";
import type { InitializerName } from "../initializers.ts";
import { gateSlices, Recurrent, type RecurrentOptions, type StepStates } from "./recurrent.ts";

export interface LSTMOptions extends RecurrentOptions {
  /** @default "sigmoid" */
  recurrentActivation?: string;
  /** Start the forget gate's bias at 1 (with a zeros bias initializer). @default true */
  unitForgetBias?: boolean;
}

export class LSTM<S extends boolean = boolean> extends Recurrent<S> {
  readonly className = "LSTM";
  protected readonly gates = 4;
  override readonly stateCount = 2;
  readonly recurrentActivation: ActivationName;
  readonly unitForgetBias: boolean;

  constructor(units: number, opts: LSTMOptions & { returnState?: S } = {}) {
    super("LSTM", units, opts);
    this.recurrentActivation = resolveActivation(opts.recurrentActivation ?? "sigmoid");
    this.unitForgetBias = opts.unitForgetBias ?? true;
  }

  protected override biasInitializerForCell(): InitializerName {
    return this.unitForgetBias && this.biasInitializer === "zeros"
      ? "unit_forget_bias"
      : this.biasInitializer;
  }

  copyWith(changes: { name: string; goBackwards: boolean }): LSTM<S> {
    return new LSTM<S>(this.units, { ...(this.options as LSTMOptions & { returnState?: S }), ...changes });
  }

  protected step(projected: tf.Tensor2D, states: StepStates, recurrentKernel: tf.Tensor2D): StepStates {
    const [h, c] = states as [tf.Tensor2D, tf.Tensor];
    const z = tf.add(projected, tf.matMul(h, recurrentKernel));
    const [zi, zf, zc, zo] = gateSlices(z, 4) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const gate = (t: tf.Tensor) => applyActivation(this.recurrentActivation, t);
    const cNext = tf.add(tf.mul(gate(zf), c), tf.mul(gate(zi), this.act(zc)));
    return [tf.mul(gate(zo), this.act(cNext)), cNext];
  }

  protected layerConfig(): Record<string, unknown> {
    const { dropout, recurrent_dropout, seed, ...rest } = this.recurrentConfig();
    return {
      ...rest,
      recurrent_activation: this.recurrentActivation,
      unit_forget_bias: this.unitForgetBias,
      dropout,
      recurrent_dropout,
      seed,
    };
  }
}
