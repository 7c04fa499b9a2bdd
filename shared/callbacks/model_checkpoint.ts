import { dirname } from "node:path";
import type { Logs } from "./callback.ts";
import { checkNumber, MonitorCallback, type MonitorOptions } from "./monitor.ts";
import { defaultPrint, type PrintFn } from "./output.ts";
import {
  formatFixed,
  formatTemplate,
  parseTemplate,
  type Template,
  type TemplateValue,
} from "./python_format.ts";

/** Options of {@link ModelCheckpoint}. */
export interface ModelCheckpointOptions extends MonitorOptions {
  /**
   * 0: silent; 1: print when saving (and, with `saveBestOnly`, when not improving).
   * @default {0}
   */
  verbose?: number;
  /**
   * Save only when the monitored quantity improves on the best value seen so far.
   * @default {false}
   */
  saveBestOnly?: boolean;
  /**
   * Save weights only (`model.saveWeights`, path ending in `.weights.h5`) instead of the whole model
   * (`model.save`, path ending in `.keras`).
   * @default {false}
   */
  saveWeightsOnly?: boolean;
  /**
   * `"epoch"` to save after each epoch, or a number of batches between saves.
   * @default {"epoch"}
   */
  saveFreq?: "epoch" | number;
  /**
   * Initial "best" value for `saveBestOnly`: only a model better than this is saved.
   * @default {null}
   */
  initialValueThreshold?: number | null;
  /**
   * Receives verbose messages.
   * @default {console.log}
   */
  print?: PrintFn;
}

/** {@link ModelCheckpointOptions} with the filepath, for the options-object form of the constructor. */
export interface ModelCheckpointConfig extends ModelCheckpointOptions {
  /** Where to save: a Python `str.format` template (see {@link ModelCheckpoint}). */
  filepath: string;
}

/** The constructor's arguments in either form as `[filepath, options]`. */
function splitArguments(
  first: string | ModelCheckpointConfig,
  second: ModelCheckpointOptions | undefined,
): [unknown, ModelCheckpointOptions] {
  if (typeof first !== "object" || first === null) return [first, second ?? {}];
  if (second !== undefined) {
    throw new TypeError(
      "ModelCheckpoint takes either (filepath, options) or one options object with a filepath: " +
        "received an options object and a second argument. Merge them into one object",
    );
  }
  const { filepath, ...options } = first;
  return [filepath, options];
}

/**
 * Saves the model or its weights during training (Keras `ModelCheckpoint`). Construct it with the
 * filepath first, `new ModelCheckpoint("ckpt/best.keras", { saveBestOnly: true })`, or with one object
 * as Keras's keyword arguments read, `new ModelCheckpoint({ filepath: "ckpt/best.keras", saveBestOnly: true })`.
 *
 * `filepath` is a Python `str.format` template filled with the 1-based `epoch`, the 1-based `batch`
 * (when saving by batch) and the log values, e.g. `"ckpt/{epoch:02d}-{val_loss:.2f}.keras"`. Parent
 * directories are created. As in Keras, the best value persists across `fit` calls, so a later `fit`
 * does not overwrite a better checkpoint.
 */
export class ModelCheckpoint extends MonitorCallback {
  readonly filepath: string;
  readonly verbose: number;
  readonly saveBestOnly: boolean;
  readonly saveWeightsOnly: boolean;
  readonly saveFreq: "epoch" | number;
  /** Best monitored value saved so far (starts at `initialValueThreshold`). */
  best: number | null;
  readonly #template: Template;
  readonly #print: PrintFn;
  #batchesSinceLastSave = 0;
  #lastBatchSeen = 0;
  #currentEpoch = 0;

  /** `new ModelCheckpoint({ filepath: "ckpt/best.keras", monitor: "val_loss", saveBestOnly: true })`. */
  constructor(config: ModelCheckpointConfig);
  /** `new ModelCheckpoint("ckpt/best.keras", { monitor: "val_loss", saveBestOnly: true })`. */
  constructor(filepath: string, options?: ModelCheckpointOptions);
  constructor(first: string | ModelCheckpointConfig, second?: ModelCheckpointOptions) {
    const [filepath, options] = splitArguments(first, second);
    super("ModelCheckpoint", options);
    if (typeof filepath !== "string" || filepath === "") {
      throw new TypeError(
        `ModelCheckpoint needs a filepath: received ${String(filepath)}. Pass e.g. "ckpt/model.keras" ` +
          `or { filepath: "ckpt/model.keras", … }`,
      );
    }
    this.filepath = filepath;
    this.verbose = checkNumber("ModelCheckpoint", "verbose", options.verbose ?? 0, { min: 0, integer: true });
    this.saveBestOnly = options.saveBestOnly ?? false;
    this.saveWeightsOnly = options.saveWeightsOnly ?? false;
    const saveFreq = options.saveFreq ?? "epoch";
    if (saveFreq !== "epoch" && !(Number.isInteger(saveFreq) && saveFreq > 0)) {
      throw new RangeError(
        `Unrecognized saveFreq: ${String(saveFreq)}. Expected saveFreq are "epoch" or a positive integer`,
      );
    }
    this.saveFreq = saveFreq;
    const threshold = options.initialValueThreshold ?? null;
    this.best = threshold === null
      ? null
      : checkNumber("ModelCheckpoint", "initialValueThreshold", threshold, {});
    this.#print = options.print ?? defaultPrint;
    if (this.saveWeightsOnly && !filepath.endsWith(".weights.h5")) {
      throw new RangeError(
        "When using `saveWeightsOnly: true` in `ModelCheckpoint`, the filepath provided must end in " +
          `\`.weights.h5\` (Keras weights format). Received: filepath=${filepath}. ` +
          'Rename it, e.g. "ckpt/{epoch:02d}.weights.h5"',
      );
    }
    if (!this.saveWeightsOnly && !filepath.endsWith(".keras")) {
      throw new RangeError(
        "The filepath provided must end in `.keras` (Keras model format). Received: " +
          `filepath=${filepath}. Rename it, e.g. "ckpt/{epoch:02d}.keras", or pass saveWeightsOnly: true ` +
          "with a `.weights.h5` path",
      );
    }
    this.#template = parseTemplate(filepath);
  }

  protected override missingMonitorMessage(available: string): string {
    return `Can save best model only with ${this.monitor} available. Available metrics are: ${available}`;
  }

  override onTrainBegin(): void {
    this.#batchesSinceLastSave = 0;
    this.#lastBatchSeen = 0;
    this.#currentEpoch = 0;
  }

  /** The best value and the batch counters, for resuming a run (see `BackupAndRestore`). */
  getState(): { best: number | null; batchesSinceLastSave: number; lastBatchSeen: number } {
    return {
      best: this.best,
      batchesSinceLastSave: this.#batchesSinceLastSave,
      lastBatchSeen: this.#lastBatchSeen,
    };
  }

  /** Restores what {@link getState} returned. */
  setState(state: unknown): void {
    const s = state as { best: number | null; batchesSinceLastSave: number; lastBatchSeen: number };
    this.best = s.best;
    this.#batchesSinceLastSave = s.batchesSinceLastSave;
    this.#lastBatchSeen = s.lastBatchSeen;
  }

  override onEpochBegin(epoch: number): void {
    this.#currentEpoch = epoch;
  }

  override async onBatchEnd(batch: number, logs?: Logs): Promise<void> {
    if (this.#shouldSaveOnBatch(batch)) await this.#save(this.#currentEpoch, batch, logs ?? {});
  }

  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    if (this.saveFreq === "epoch") await this.#save(epoch, null, logs ?? {});
  }

  /** The path a save at this point would write: the template filled with 1-based epoch and batch. */
  filePathFor(epoch: number, batch: number | null, logs: Logs): string {
    const values: Record<string, TemplateValue> = {};
    for (const [key, value] of Object.entries(logs)) values[key] = { value, isInt: false };
    values.epoch = { value: epoch + 1, isInt: true };
    if (batch !== null && !("batch" in logs)) values.batch = { value: batch + 1, isInt: true };
    return formatTemplate(this.filepath, this.#template, values);
  }

  #shouldSaveOnBatch(batch: number): boolean {
    if (this.saveFreq === "epoch") return false;
    // A batch number that does not grow means a new epoch started.
    const added = batch <= this.#lastBatchSeen ? batch + 1 : batch - this.#lastBatchSeen;
    this.#batchesSinceLastSave += added;
    this.#lastBatchSeen = batch;
    if (this.#batchesSinceLastSave < this.saveFreq) return false;
    this.#batchesSinceLastSave = 0;
    return true;
  }

  #shouldSave(epoch: number, logs: Logs, filepath: string): boolean {
    if (!this.saveBestOnly) {
      if (this.verbose > 0) this.#print(`\nEpoch ${epoch + 1}: saving model to ${filepath}`);
      return true;
    }
    const current = this.getMonitorValue(logs);
    if (current === undefined) return true;
    const bestText = this.best === null ? "None" : formatFixed(this.best, 5);
    if (this.isImprovement(current, this.best)) {
      if (this.verbose > 0) {
        this.#print(
          `\nEpoch ${epoch + 1}: ${this.monitor} improved from ${bestText} to ${formatFixed(current, 5)}, ` +
            `saving model to ${filepath}`,
        );
      }
      this.best = current;
      return true;
    }
    if (this.verbose > 0) {
      this.#print(`\nEpoch ${epoch + 1}: ${this.monitor} did not improve from ${bestText}`);
    }
    return false;
  }

  async #save(epoch: number, batch: number | null, logs: Logs): Promise<void> {
    const filepath = this.filePathFor(epoch, batch, logs);
    if (!this.#shouldSave(epoch, logs, filepath)) return;
    const stat = await Deno.stat(filepath).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
    if (stat?.isDirectory) {
      throw new Error(
        "Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an existing " +
          `directory: ${filepath}`,
      );
    }
    await Deno.mkdir(dirname(filepath), { recursive: true });
    if (this.saveWeightsOnly) await this.model.saveWeights(filepath);
    else await this.model.save(filepath);
  }
}
