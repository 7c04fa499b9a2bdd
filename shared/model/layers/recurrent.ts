/**
 * The base of Keras's recurrent layers (`SimpleRNN`, `GRU`, `LSTM`) on `[steps, features]` inputs.
 * Each sample runs through time on its own (no statistics across the batch), from zero states.
 *
 * The input projection `x · kernel + bias` of every step is one matrix product over the whole
 * sequence (`[batch·steps, features] × [features, gates·units]`); only `h · recurrent_kernel` runs
 * per step. Weights are stored as Keras's cell stores them, in the layer's `cell` group:
 * `kernel [features, gates·units]`, `recurrent_kernel [units, gates·units]`, `bias`.
 */
import { tf } from "../tf.ts";
import { type ActivationName, applyActivation, resolveActivation } from "../activations.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import { Layer, type LayerOptions, type Shape, type SymbolicTensor, type WeightSpec } from "./layer.ts";

export interface RecurrentOptions extends LayerOptions {
  /** @default "tanh" */
  activation?: string | null;
  /** @default true */
  useBias?: boolean;
  /** @default "glorot_uniform" */
  kernelInitializer?: string;
  /** @default "orthogonal" */
  recurrentInitializer?: string;
  /** @default "zeros" */
  biasInitializer?: string;
  kernelRegularizer?: Regularizer | null;
  recurrentRegularizer?: Regularizer | null;
  biasRegularizer?: Regularizer | null;
  /** Output the whole sequence `[steps, units]` rather than the last output. @default false */
  returnSequences?: boolean;
  /**
   * Also return the final states: a call gives `[output, ...states]` (LSTM: `[output, h, c]`; GRU and
   * SimpleRNN: `[output, h]`), as Keras's `return_state`. @default false
   */
  returnState?: boolean;
  /** Run through the sequence from its end; the output sequence is then in that order. @default false */
  goBackwards?: boolean;
  /** Input dropout; only 0 is supported. @default 0 */
  dropout?: number;
  /** Recurrent dropout; only 0 is supported. @default 0 */
  recurrentDropout?: number;
}

/** What one step gives: the output and the states to carry (the output is the first state). */
export type StepStates = tf.Tensor[];

/**
 * The base of the recurrent layers. `S` is the type of `returnState`, so that `apply` is typed as
 * returning `[output, ...states]` for a layer made with `returnState: true` and one tensor otherwise.
 */
export abstract class Recurrent<S extends boolean = boolean> extends Layer {
  readonly units: number;
  readonly activation: ActivationName;
  readonly useBias: boolean;
  readonly kernelInitializer: InitializerName;
  readonly recurrentInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly kernelRegularizer: Regularizer | null;
  readonly recurrentRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;
  readonly returnSequences: boolean;
  readonly returnState: S;
  readonly goBackwards: boolean;
  /** Blocks of `units` columns in the kernels: 1 (SimpleRNN), 3 (GRU), 4 (LSTM). */
  protected abstract readonly gates: number;
  /** Number of states carried between steps (LSTM: h and c), returned after the output with `returnState`. */
  readonly stateCount: number = 1;
  /** The options the layer was made with, for {@link copyWith}. */
  protected readonly options: RecurrentOptions;

  constructor(className: string, units: number, opts: RecurrentOptions & { returnState?: S }) {
    super(opts);
    if (!Number.isInteger(units) || units <= 0) {
      throw new RangeError(
        `Cannot create a ${className} layer as units must be a positive integer: received units=${units}`,
      );
    }
    for (const key of ["dropout", "recurrentDropout"] as const) {
      if ((opts[key] ?? 0) !== 0) {
        throw new RangeError(
          `Cannot create a ${className} layer with ${key}=${opts[key]} as Shoal's recurrent layers have no ` +
            `dropout yet: use ${key}=0 and put a Dropout layer after the ${className}`,
        );
      }
    }
    this.options = { ...opts };
    this.units = units;
    this.activation = resolveActivation(opts.activation === undefined ? "tanh" : opts.activation);
    this.useBias = opts.useBias ?? true;
    this.kernelInitializer = resolveInitializer(opts.kernelInitializer ?? "glorot_uniform");
    this.recurrentInitializer = resolveInitializer(opts.recurrentInitializer ?? "orthogonal");
    this.biasInitializer = resolveInitializer(opts.biasInitializer ?? "zeros");
    this.kernelRegularizer = opts.kernelRegularizer ?? null;
    this.recurrentRegularizer = opts.recurrentRegularizer ?? null;
    this.biasRegularizer = opts.biasRegularizer ?? null;
    this.returnSequences = opts.returnSequences ?? false;
    this.returnState = (opts.returnState ?? false) as S;
    this.goBackwards = opts.goBackwards ?? false;
  }

  override checkInputs(inputShapes: Shape[]): void {
    const s = inputShapes[0]!;
    this.expectRank(s, 3, {
      dims: "batch, steps, features",
      fix: "Put an Embedding before it for token ids, or reshape the data to [n, steps, features]",
    });
  }

  /** A new, unbuilt layer with these options changed (Bidirectional's backward layer). */
  abstract copyWith(changes: { name: string; goBackwards: boolean }): Recurrent<S>;

  /** The bias's shape (GRU with `reset_after` has two rows). */
  protected biasShape(): number[] {
    return [this.gates * this.units];
  }

  /** The bias's initializer as the cell applies it (LSTM's `unit_forget_bias`). */
  protected biasInitializerForCell(): InitializerName {
    return this.biasInitializer;
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const features = inputShapes[0]![1]!;
    const width = this.gates * this.units;
    const specs: WeightSpec[] = [
      {
        name: "kernel",
        shape: [features, width],
        trainable: true,
        initializer: this.kernelInitializer,
        regularizer: this.kernelRegularizer,
        group: "cell",
      },
      {
        name: "recurrent_kernel",
        shape: [this.units, width],
        trainable: true,
        initializer: this.recurrentInitializer,
        regularizer: this.recurrentRegularizer,
        group: "cell",
      },
    ];
    if (this.useBias) {
      specs.push({
        name: "bias",
        shape: this.biasShape(),
        trainable: true,
        initializer: this.biasInitializerForCell(),
        regularizer: this.biasRegularizer,
        group: "cell",
      });
    }
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return this.returnSequences ? [inputShapes[0]![0]!, this.units] : [this.units];
  }

  /** The output's shape, then with `returnState` one `[units]` per state. */
  override computeOutputShapes(inputShapes: Shape[]): Shape[] {
    const states = this.returnState ? Array.from({ length: this.stateCount }, () => [this.units]) : [];
    return [this.computeOutputShape(inputShapes), ...states];
  }

  /**
   * Calls the layer on symbolic tensors: `[output, ...states]` for a layer made with `returnState:
   * true` (`const [out, h, c] = lstm.apply(x)`), else the output.
   */
  override apply(this: Recurrent<true>, inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor[];
  override apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor;
  override apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor | SymbolicTensor[] {
    const outputs = this.applyAll(inputs);
    return this.returnState ? outputs : outputs[0]!;
  }

  /** The bias added to the input projection (all of it, or GRU's input row). */
  protected inputBias(bias: tf.Tensor | undefined): tf.Tensor | undefined {
    return bias;
  }

  /**
   * One step: `projected` is this step's `x · kernel + inputBias` `[batch, gates·units]`; `states`
   * are the previous states. Returns the new states, the output first.
   */
  protected abstract step(
    projected: tf.Tensor2D,
    states: StepStates,
    recurrentKernel: tf.Tensor2D,
    bias: tf.Tensor | undefined,
  ): StepStates;

  protected act(x: tf.Tensor): tf.Tensor {
    return applyActivation(this.activation, x);
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    return this.run(inputs, weights)[0]!;
  }

  /** The output, then with `returnState` the final states (in the order the steps carry them). */
  override callAll(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor[] {
    const [output, ...states] = this.run(inputs, weights);
    return this.returnState ? [output!, ...states] : [output!];
  }

  /** Runs through the sequence: the output, then every final state. */
  private run(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor[] {
    const x = inputs[0]!;
    const [batch, steps, features] = x.shape as [number, number, number];
    const [kernel, recurrentKernel, bias] = weights as [tf.Tensor2D, tf.Tensor2D, tf.Tensor | undefined];
    const width = this.gates * this.units;
    const inBias = this.inputBias(bias);
    const flat = tf.reshape(x, [batch * steps, features]) as tf.Tensor2D;
    const projected = inBias
      ? tf.fused.matMul({ a: flat, b: kernel, bias: inBias })
      : tf.matMul(flat, kernel);
    // A copy: tfjs's tape keeps the very array unstack returns as the op's outputs, so reversing it in
    // place would pair each step's gradient with the mirrored step.
    const perStep = [...tf.unstack(tf.reshape(projected, [batch, steps, width]), 1)] as tf.Tensor2D[];
    if (this.goBackwards) perStep.reverse();
    let states: StepStates = Array.from({ length: this.stateCount }, () => tf.zeros([batch, this.units]));
    const outputs: tf.Tensor[] = [];
    for (const p of perStep) {
      states = this.step(p, states, recurrentKernel, bias);
      if (this.returnSequences) outputs.push(states[0]!);
    }
    return [this.returnSequences ? tf.stack(outputs, 1) : states[0]!, ...states];
  }

  /** Config keys every recurrent layer writes. */
  protected recurrentConfig(): Record<string, unknown> {
    return {
      return_sequences: this.returnSequences,
      return_state: this.returnState,
      go_backwards: this.goBackwards,
      stateful: false,
      unroll: false,
      zero_output_for_mask: false,
      units: this.units,
      activation: this.activation,
      use_bias: this.useBias,
      kernel_initializer: initializerConfig(this.kernelInitializer),
      recurrent_initializer: initializerConfig(this.recurrentInitializer),
      bias_initializer: initializerConfig(this.biasInitializer),
      kernel_regularizer: this.kernelRegularizer?.toConfig() ?? null,
      recurrent_regularizer: this.recurrentRegularizer?.toConfig() ?? null,
      bias_regularizer: this.biasRegularizer?.toConfig() ?? null,
      activity_regularizer: null,
      kernel_constraint: null,
      recurrent_constraint: null,
      bias_constraint: null,
      dropout: 0,
      recurrent_dropout: 0,
      seed: null,
    };
  }
}

/** Splits `[batch, blocks·units]` into `blocks` tensors of `[batch, units]`. */
export function gateSlices(x: tf.Tensor, blocks: number): tf.Tensor[] {
  return tf.split(x, blocks, 1);
}
