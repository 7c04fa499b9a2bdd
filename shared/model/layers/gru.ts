/**
 * `GRU` as Keras computes it, gates in kernel order update (z), reset (r), candidate (h):
 * `h = z·h_prev + (1 - z)·candidate`. With `resetAfter` (Keras's default, the cuDNN form) the reset
 * gate multiplies `h_prev · recurrent_kernel_h + recurrent_bias_h`, and the bias has two rows (input,
 * recurrent); without it the reset gate multiplies `h_prev` before its product, and the bias has one.
 */
import { tf } from "../tf.ts";
import { type ActivationName, applyActivation, resolveActivation } from "../activations.ts";
import { gateSlices, Recurrent, type RecurrentOptions, type StepStates } from "./recurrent.ts";

export interface GRUOptions extends RecurrentOptions {
  /** @default "sigmoid" */
  recurrentActivation?: string;
  /** Apply the reset gate after the recurrent product. @default true */
  resetAfter?: boolean;
}

export class GRU<S extends boolean = boolean> extends Recurrent<S> {
  readonly className = "GRU";
  protected readonly gates = 3;
  readonly recurrentActivation: ActivationName;
  readonly resetAfter: boolean;

  constructor(units: number, opts: GRUOptions & { returnState?: S } = {}) {
    super("GRU", units, opts);
    this.recurrentActivation = resolveActivation(opts.recurrentActivation ?? "sigmoid");
    this.resetAfter = opts.resetAfter ?? true;
  }

  protected override biasShape(): number[] {
    return this.resetAfter ? [2, 3 * this.units] : [3 * this.units];
  }

  protected override inputBias(bias: tf.Tensor | undefined): tf.Tensor | undefined {
    if (!bias || !this.resetAfter) return bias;
    return tf.reshape(tf.slice(bias, [0, 0], [1, 3 * this.units]), [3 * this.units]);
  }

  copyWith(changes: { name: string; goBackwards: boolean }): GRU<S> {
    return new GRU<S>(this.units, { ...(this.options as GRUOptions & { returnState?: S }), ...changes });
  }

  protected step(
    projected: tf.Tensor2D,
    states: StepStates,
    recurrentKernel: tf.Tensor2D,
    bias: tf.Tensor | undefined,
  ): StepStates {
    const h = states[0] as tf.Tensor2D;
    const u = this.units;
    const [xz, xr, xh] = gateSlices(projected, 3) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const gate = (t: tf.Tensor) => applyActivation(this.recurrentActivation, t);
    let z: tf.Tensor, r: tf.Tensor, candidate: tf.Tensor;
    if (this.resetAfter) {
      let inner: tf.Tensor = tf.matMul(h, recurrentKernel);
      if (bias) inner = tf.add(inner, tf.reshape(tf.slice(bias, [1, 0], [1, 3 * u]), [3 * u]));
      const [rz, rr, rh] = gateSlices(inner, 3) as [tf.Tensor, tf.Tensor, tf.Tensor];
      z = gate(tf.add(xz, rz));
      r = gate(tf.add(xr, rr));
      candidate = this.act(tf.add(xh, tf.mul(r, rh)));
    } else {
      const [kzr, kh] = tf.split(recurrentKernel, [2 * u, u], 1) as [tf.Tensor2D, tf.Tensor2D];
      const [rz, rr] = gateSlices(tf.matMul(h, kzr), 2) as [tf.Tensor, tf.Tensor];
      z = gate(tf.add(xz, rz));
      r = gate(tf.add(xr, rr));
      candidate = this.act(tf.add(xh, tf.matMul(tf.mul(r, h) as tf.Tensor2D, kh)));
    }
    return [tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), candidate))];
  }

  protected layerConfig(): Record<string, unknown> {
    const { dropout, recurrent_dropout, seed, ...rest } = this.recurrentConfig();
    return {
      ...rest,
      recurrent_activation: this.recurrentActivation,
      dropout,
      recurrent_dropout,
      reset_after: this.resetAfter,
      seed,
    };
  }
}
