/**
 * The TensorBoard callback, with Keras 3's run layout and summary names.
 *
 * @module
 */

import { join } from "node:path";
import { EventFileWriter, kerasModelValue } from "../io/tensorboard/mod.ts";
import { Callback, type Logs } from "./callback.ts";

/** When {@link TensorBoard} writes metrics: each epoch, each batch, or every N batches. */
export type UpdateFreq = "epoch" | "batch" | number;

/** Options of {@link TensorBoard}. */
export interface TensorBoardOptions {
  /**
   * Directory of the runs: `<logDir>/train` and `<logDir>/validation`. Use one per experiment.
   * @default "logs"
   */
  logDir?: string;
  /**
   * Write weight histograms every this many epochs (at epochs 0, N, 2N, …); 0 turns them off.
   * Needs a model that implements {@link NamedWeightsModel}.
   * @default 0
   */
  histogramFreq?: number;
  /**
   * Write the model config (Keras `to_json`) for the Graphs dashboard, tag `keras`, step 0, when
   * the model has `toJSON()`.
   * @default true
   */
  writeGraph?: boolean;
  /**
   * `"epoch"`: only `epoch_*` scalars. `"batch"` or N: also `batch_<metric>` scalars every N
   * global batches (`"batch"` is 1), stepped by the global batch count (first batch is 1).
   * @default "epoch"
   */
  updateFreq?: UpdateFreq;
}

/** A weight with its Keras path, e.g. `dense/kernel`. */
export interface NamedWeight {
  readonly name: string;
  readonly data: Float32Array;
}

/**
 * The optional part of a model {@link TensorBoard} uses for histograms and the graph. Checked
 * at run time with {@link isNamedWeightsModel} and {@link hasModelJson}.
 */
export interface NamedWeightsModel {
  /** All weights with Keras paths (`<layer name>/<weight name>`). */
  namedWeights(): NamedWeight[];
  /** The model config as Keras `model.to_json()` gives it: a JSON string, or a value to stringify. */
  toJSON(): unknown;
}

/** True when `model` has `namedWeights()`. */
export function isNamedWeightsModel(model: unknown): model is Pick<NamedWeightsModel, "namedWeights"> {
  return typeof (model as { namedWeights?: unknown } | null)?.namedWeights === "function";
}

/** True when `model` has `toJSON()`. */
export function hasModelJson(model: unknown): model is Pick<NamedWeightsModel, "toJSON"> {
  return typeof (model as { toJSON?: unknown } | null)?.toJSON === "function";
}

type Run = "train" | "validation";

function validated(
  options: TensorBoardOptions,
): { logDir: string; histogramFreq: number; updateFreq: number | "epoch" } {
  const logDir = options.logDir ?? "logs";
  if (typeof logDir !== "string" || logDir.length === 0) {
    throw new TypeError(
      `Cannot create TensorBoard as logDir must be a non-empty path: current value is ${
        JSON.stringify(logDir)
      }`,
    );
  }
  const histogramFreq = options.histogramFreq ?? 0;
  if (!Number.isInteger(histogramFreq) || histogramFreq < 0) {
    throw new RangeError(
      `Cannot create TensorBoard as histogramFreq must be an integer >= 0: current value is ${histogramFreq}`,
    );
  }
  const freq = options.updateFreq ?? "epoch";
  const updateFreq = freq === "batch" ? 1 : freq;
  if (updateFreq !== "epoch" && !(Number.isInteger(updateFreq) && updateFreq > 0)) {
    throw new RangeError(
      `Cannot create TensorBoard as updateFreq must be "epoch", "batch" or a positive integer: current value is ${
        JSON.stringify(freq)
      }`,
    );
  }
  return { logDir, histogramFreq, updateFreq };
}

/**
 * Writes TensorBoard event files as Keras 3's `keras.callbacks.TensorBoard` does:
 *
 * - `<logDir>/train`: `epoch_<metric>` (including `epoch_learning_rate`) at step = epoch
 *   (0-based), `batch_<metric>` when `updateFreq` is not `"epoch"`, weight histograms
 *   `<layer>/<weight>/histogram` every `histogramFreq` epochs, and the model config
 *   (tag `keras`, plugin `graph_keras_model`, step 0) when `writeGraph`.
 * - `<logDir>/validation`: `val_*` metrics without the prefix as `epoch_<metric>`, and
 *   `evaluation_<metric>_vs_iterations` at step = optimizer iterations on each `onTestEnd`.
 *
 * Files are opened on first use, flushed at each epoch end, and closed at `onTrainEnd`; each
 * `fit` writes new files.
 */
export class TensorBoard extends Callback {
  /** Root directory of the runs. */
  readonly logDir: string;
  /** Epochs between weight histograms; 0 for none. */
  readonly histogramFreq: number;
  /** Whether the model config is written. */
  readonly writeGraph: boolean;
  /** `"epoch"`, or the number of global batches between `batch_*` scalars. */
  readonly updateFreq: "epoch" | number;
  #writers = new Map<Run, Promise<EventFileWriter>>();
  #globalTrainBatch = 0;
  #training = false;

  constructor(options: TensorBoardOptions = {}) {
    super();
    const { logDir, histogramFreq, updateFreq } = validated(options);
    this.logDir = logDir;
    this.histogramFreq = histogramFreq;
    this.writeGraph = options.writeGraph ?? true;
    this.updateFreq = updateFreq;
  }

  #writer(run: Run): Promise<EventFileWriter> {
    let writer = this.#writers.get(run);
    if (!writer) {
      writer = EventFileWriter.open(join(this.logDir, run));
      this.#writers.set(run, writer);
    }
    return writer;
  }

  async #closeWriters(): Promise<void> {
    const writers = [...this.#writers.values()];
    this.#writers = new Map();
    await Promise.all(writers.map(async (w) => (await w).close()));
  }

  async #flushWriters(): Promise<void> {
    await Promise.all([...this.#writers.values()].map(async (w) => (await w).flush()));
  }

  override async onTrainBegin(_logs?: Logs): Promise<void> {
    this.#globalTrainBatch = 0;
    this.#training = true;
    if (this.histogramFreq > 0 && !isNamedWeightsModel(this.model)) {
      throw new TypeError(
        `Cannot write weight histograms as the model has no namedWeights() method: ` +
          `current histogramFreq is ${this.histogramFreq}; set histogramFreq to 0 or use a model that implements NamedWeightsModel`,
      );
    }
    if (this.writeGraph && hasModelJson(this.model)) await this.#writeModelConfig(this.model);
  }

  async #writeModelConfig(model: Pick<NamedWeightsModel, "toJSON">): Promise<void> {
    let json: string;
    try {
      const config = model.toJSON();
      json = typeof config === "string" ? config : JSON.stringify(config);
    } catch (error) {
      console.warn(
        `TensorBoard: the model config could not be serialized to JSON, so no graph is written: ${error}`,
      );
      return;
    }
    (await this.#writer("train")).addSummary([kerasModelValue("keras", json)], 0);
  }

  /** The global batch count, kept in a BackupAndRestore backup so `batch_*` steps go on after a resume. */
  getState(): { globalTrainBatch: number } {
    return { globalTrainBatch: this.#globalTrainBatch };
  }

  setState(state: unknown): void {
    const value = (state as { globalTrainBatch?: unknown } | undefined)?.globalTrainBatch;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw new TypeError(
        `Cannot restore TensorBoard from the backup as its global batch count must be a non-negative integer: ` +
          `current value is ${JSON.stringify(value)}; delete the backup to start over`,
      );
    }
    this.#globalTrainBatch = value;
  }

  override onBatchBegin(_batch: number, _logs?: Logs): void {
    this.#globalTrainBatch++;
  }

  override async onBatchEnd(_batch: number, logs?: Logs): Promise<void> {
    if (this.updateFreq === "epoch" || !logs || this.#globalTrainBatch % this.updateFreq !== 0) return;
    const writer = await this.#writer("train");
    for (const [name, value] of Object.entries(logs)) {
      writer.addScalar(`batch_${name}`, value, this.#globalTrainBatch);
    }
    if (writer.shouldFlush) await writer.flush();
  }

  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    if (logs && Object.keys(logs).length > 0) await this.#logEpochMetrics(epoch, logs);
    if (this.histogramFreq > 0 && epoch % this.histogramFreq === 0) await this.#logWeights(epoch);
    await this.#flushWriters();
  }

  async #logEpochMetrics(epoch: number, logs: Logs): Promise<void> {
    const train: Record<string, number> = {};
    const validation: Record<string, number> = {};
    for (const [name, value] of Object.entries(logs)) {
      if (name.startsWith("val_")) validation[name.slice(4)] = value;
      else train[name] = value;
    }
    const learningRate = this.model?.optimizer?.learningRate;
    if (typeof learningRate === "number") train.learning_rate = learningRate;
    for (const [run, metrics] of [["train", train], ["validation", validation]] as const) {
      if (Object.keys(metrics).length === 0) continue;
      const writer = await this.#writer(run);
      for (const [name, value] of Object.entries(metrics)) writer.addScalar(`epoch_${name}`, value, epoch);
    }
  }

  async #logWeights(epoch: number): Promise<void> {
    if (!isNamedWeightsModel(this.model)) return;
    const writer = await this.#writer("train");
    for (const { name, data } of this.model.namedWeights()) {
      writer.addHistogram(`${name.replaceAll(":", "_")}/histogram`, data, epoch);
    }
  }

  override async onTestEnd(logs?: Logs): Promise<void> {
    const iterations = this.model?.optimizer?.iterations;
    if (logs && typeof iterations === "number") {
      const writer = await this.#writer("validation");
      for (const [name, value] of Object.entries(logs)) {
        writer.addScalar(`evaluation_${name}_vs_iterations`, value, iterations);
      }
    }
    if (!this.#training) await this.#closeWriters();
  }

  override async onTrainEnd(_logs?: Logs): Promise<void> {
    this.#training = false;
    await this.#closeWriters();
  }
}
