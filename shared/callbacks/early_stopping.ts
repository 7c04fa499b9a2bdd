import type { Logs } from "./callback.ts";
import { checkNumber, MonitorCallback, type MonitorOptions } from "./monitor.ts";
import { defaultPrint, type PrintFn } from "./output.ts";

/** Options of {@link EarlyStopping}. */
export interface EarlyStoppingOptions extends MonitorOptions {
  /**
   * Epochs with no improvement after which training stops.
   * @default {0}
   */
  patience?: number;
  /**
   * 0: silent; 1: print when stopping and when restoring weights.
   * @default {0}
   */
  verbose?: number;
  /**
   * Value the monitored quantity must improve on; training stops after `patience` epochs that do not.
   * @default {null}
   */
  baseline?: number | null;
  /**
   * Restore the weights of the best epoch when training ends (even when it did not stop early).
   * @default {false}
   */
  restoreBestWeights?: boolean;
  /**
   * Epochs of warm-up before monitoring starts.
   * @default {0}
   */
  startFromEpoch?: number;
  /**
   * Receives verbose messages.
   * @default {console.log}
   */
  print?: PrintFn;
}

/** What {@link EarlyStopping.getState} returns. */
export interface EarlyStoppingState {
  wait: number;
  stoppedEpoch: number;
  best: number | null;
  bestEpoch: number;
  bestWeights: Float32Array[] | null;
}

/**
 * Stops training when a monitored quantity has stopped improving (Keras `EarlyStopping`).
 *
 * @example
 * ```ts
 * const stop = new EarlyStopping({ monitor: "val_loss", patience: 3, restoreBestWeights: true });
 * ```
 */
export class EarlyStopping extends MonitorCallback {
  readonly patience: number;
  readonly verbose: number;
  readonly baseline: number | null;
  readonly restoreBestWeights: boolean;
  readonly startFromEpoch: number;
  /** Epochs since the last improvement over both the best value and the baseline. */
  wait = 0;
  /** 0-based epoch at which training was stopped; 0 when it was not. */
  stoppedEpoch = 0;
  /** Best monitored value so far, `null` before the first monitored epoch. */
  best: number | null = null;
  /** 0-based epoch of {@link best}. */
  bestEpoch = 0;
  /** Weights at {@link bestEpoch}, kept when `restoreBestWeights`. */
  bestWeights: Float32Array[] | null = null;
  readonly #print: PrintFn;

  constructor(options: EarlyStoppingOptions = {}) {
    super("EarlyStopping", options);
    this.patience = checkNumber("EarlyStopping", "patience", options.patience ?? 0, {
      min: 0,
      integer: true,
    });
    this.verbose = checkNumber("EarlyStopping", "verbose", options.verbose ?? 0, { min: 0, integer: true });
    const baseline = options.baseline ?? null;
    this.baseline = baseline === null ? null : checkNumber("EarlyStopping", "baseline", baseline, {});
    this.restoreBestWeights = options.restoreBestWeights ?? false;
    this.startFromEpoch = checkNumber("EarlyStopping", "startFromEpoch", options.startFromEpoch ?? 0, {
      min: 0,
      integer: true,
    });
    this.#print = options.print ?? defaultPrint;
  }

  protected override missingMonitorMessage(available: string): string {
    return `Early stopping conditioned on metric \`${this.monitor}\` which is not available. ` +
      `Available metrics are: ${available}`;
  }

  override onTrainBegin(): void {
    this.wait = 0;
    this.stoppedEpoch = 0;
    this.best = null;
    this.bestWeights = null;
    this.bestEpoch = 0;
  }

  override onEpochEnd(epoch: number, logs?: Logs): void {
    const current = this.getMonitorValue(logs);
    if (current === undefined || epoch < this.startFromEpoch) return;
    if (this.restoreBestWeights && this.bestWeights === null) {
      // Before any improvement is recorded, the current weights are the best.
      this.bestWeights = this.model.getWeights();
      this.bestEpoch = epoch;
    }
    this.wait += 1;
    if (this.isImprovement(current, this.best)) {
      this.best = current;
      this.bestEpoch = epoch;
      if (this.restoreBestWeights) this.bestWeights = this.model.getWeights();
      // Restart the wait only when beating both the previous best and the baseline.
      if (this.baseline === null || this.isImprovement(current, this.baseline)) this.wait = 0;
      return;
    }
    if (this.wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
    }
  }

  /** The counters, best value and best weights, for resuming a run (see `BackupAndRestore`). */
  getState(): EarlyStoppingState {
    const { wait, stoppedEpoch, best, bestEpoch, bestWeights } = this;
    return { wait, stoppedEpoch, best, bestEpoch, bestWeights };
  }

  /** Restores what {@link getState} returned. */
  setState(state: unknown): void {
    Object.assign(this, state as EarlyStoppingState);
  }

  override onTrainEnd(): void {
    if (this.stoppedEpoch > 0 && this.verbose > 0) {
      this.#print(`Epoch ${this.stoppedEpoch + 1}: early stopping`);
    }
    if (this.restoreBestWeights && this.bestWeights !== null) {
      if (this.verbose > 0) {
        this.#print(`Restoring model weights from the end of the best epoch: ${this.bestEpoch + 1}.`);
      }
      this.model.setWeights(this.bestWeights);
    }
  }
}
