/**
 * The Keras callback protocol. Callbacks run on the coordinator, see logs already combined across
 * workers, and reach the model only through the narrow {@link CallbackModel} view.
 *
 * Epoch and batch numbers passed to hooks are 0-based, as in Keras.
 */

/** Metric values by Keras name (`loss`, `accuracy`, `val_loss`, `learning_rate`, …). */
export type Logs = Readonly<Record<string, number>>;

/** What a callback may see of the optimizer. `learningRate` is settable during training. */
export interface CallbackOptimizer {
  learningRate: number;
  /** Number of optimizer steps applied so far. */
  readonly iterations: number;
}

/** What a callback may see and do to the model being trained. */
export interface CallbackModel {
  /** Set to true to stop after the current epoch (Keras `model.stop_training`). */
  stopTraining: boolean;
  readonly optimizer: CallbackOptimizer;
  /** Copies of all weights (trainable and not) in Keras `get_weights()` order. */
  getWeights(): Float32Array[];
  /** Replaces all weights; the list must match {@link getWeights} in count and sizes. */
  setWeights(weights: readonly Float32Array[]): void;
  /** Writes a `.keras` archive (atomic). */
  save(path: string): Promise<void>;
  /** Writes a `.weights.h5` file (atomic). */
  saveWeights(path: string): Promise<void>;
}

/** Parameters of the current `fit` call (Keras `callback.params`). */
export interface TrainParams {
  readonly epochs: number;
  /** Steps (batches) per epoch. */
  readonly steps: number;
  readonly verbose: 0 | 1 | 2;
}

/**
 * Base class for callbacks. Override any hook; each may return a promise, which the trainer awaits.
 * `this.model` and `this.params` are set before `onTrainBegin`.
 */
export class Callback {
  model!: CallbackModel;
  params!: TrainParams;

  setModel(model: CallbackModel): void {
    this.model = model;
  }

  setParams(params: TrainParams): void {
    this.params = params;
  }

  onTrainBegin(_logs?: Logs): void | Promise<void> {}
  onTrainEnd(_logs?: Logs): void | Promise<void> {}
  onEpochBegin(_epoch: number, _logs?: Logs): void | Promise<void> {}
  onEpochEnd(_epoch: number, _logs?: Logs): void | Promise<void> {}
  onBatchBegin(_batch: number, _logs?: Logs): void | Promise<void> {}
  onBatchEnd(_batch: number, _logs?: Logs): void | Promise<void> {}
  onTestBegin(_logs?: Logs): void | Promise<void> {}
  onTestEnd(_logs?: Logs): void | Promise<void> {}
}
