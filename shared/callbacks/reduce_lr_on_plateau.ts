import type { Logs } from "./callback.ts";
import { checkNumber, MonitorCallback, type MonitorOptions } from "./monitor.ts";
import { defaultPrint, type PrintFn } from "./output.ts";
import { pyRepr } from "./python_format.ts";

/** Options of {@link ReduceLROnPlateau}. */
export interface ReduceLROnPlateauOptions extends MonitorOptions {
  /**
   * Factor by which the learning rate is reduced: `newLr = lr * factor`, in (0, 1).
   * @default {0.1}
   */
  factor?: number;
  /**
   * Epochs with no improvement after which the learning rate is reduced.
   * @default {10}
   */
  patience?: number;
  /**
   * 0: quiet; 1: print each reduction.
   * @default {0}
   */
  verbose?: number;
  /**
   * Threshold for a new optimum, to focus on significant changes; its sign is ignored.
   * @default {1e-4}
   */
  minDelta?: number;
  /**
   * Epochs to wait after a reduction before resuming normal operation.
   * @default {0}
   */
  cooldown?: number;
  /**
   * Lower bound on the learning rate.
   * @default {0}
   */
  minLr?: number;
  /**
   * Receives verbose messages.
   * @default {console.log}
   */
  print?: PrintFn;
}

/**
 * Reduces the learning rate when a monitored quantity has stopped improving (Keras
 * `ReduceLROnPlateau`). Adds `learning_rate` (the rate used during the epoch, as a float32 value, as
 * Keras reports it) to the epoch logs that later callbacks see.
 *
 * In `"auto"` mode the direction is `"max"` when the monitored name contains `"acc"`, else `"min"`
 * (this callback's own Keras rule).
 */
export class ReduceLROnPlateau extends MonitorCallback {
  readonly factor: number;
  readonly patience: number;
  readonly verbose: number;
  readonly cooldown: number;
  readonly minLr: number;
  /** Epochs left in the current cooldown. */
  cooldownCounter = 0;
  /** Epochs without improvement (outside cooldown). */
  wait = 0;
  /** Best monitored value so far. */
  best: number;
  readonly #print: PrintFn;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    super(
      "ReduceLROnPlateau",
      { ...options, minDelta: options.minDelta ?? 1e-4 },
      (monitor) => monitor.includes("acc") ? "max" : "min",
    );
    const factor = options.factor ?? 0.1;
    if (typeof factor !== "number" || !(factor > 0 && factor < 1)) {
      const bound = factor >= 1 ? ">= 1.0" : "<= 0 (or a non-number)";
      throw new RangeError(
        `ReduceLROnPlateau does not support a factor ${bound}: received factor=${String(factor)}. ` +
          `Use a factor in (0, 1)`,
      );
    }
    this.factor = factor;
    this.patience = checkNumber("ReduceLROnPlateau", "patience", options.patience ?? 10, {
      min: 0,
      integer: true,
    });
    this.verbose = checkNumber("ReduceLROnPlateau", "verbose", options.verbose ?? 0, {
      min: 0,
      integer: true,
    });
    this.cooldown = checkNumber("ReduceLROnPlateau", "cooldown", options.cooldown ?? 0, {
      min: 0,
      integer: true,
    });
    this.minLr = checkNumber("ReduceLROnPlateau", "minLr", options.minLr ?? 0, { min: 0 });
    this.#print = options.print ?? defaultPrint;
    this.best = this.direction === "min" ? Infinity : -Infinity;
  }

  protected override missingMonitorMessage(available: string): string {
    return `Learning rate reduction is conditioned on metric \`${this.monitor}\` which is not available. ` +
      `Available metrics are: ${available}.`;
  }

  /** Keras's comparison for this callback: `current < best - |minDelta|` (or `>` `best + |minDelta|`). */
  override isImprovement(current: number, reference: number | null): boolean {
    if (reference === null) return true;
    return this.direction === "min"
      ? current < reference + this.minDelta
      : current > reference + this.minDelta;
  }

  /** Whether a cooldown is running. */
  inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  /** The counters and best value, for resuming a run (see `BackupAndRestore`). */
  getState(): { wait: number; cooldownCounter: number; best: number } {
    return { wait: this.wait, cooldownCounter: this.cooldownCounter, best: this.best };
  }

  /** Restores what {@link getState} returned. */
  setState(state: unknown): void {
    const s = state as { wait: number; cooldownCounter: number; best: number };
    this.wait = s.wait;
    this.cooldownCounter = s.cooldownCounter;
    this.best = s.best;
  }

  override onTrainBegin(): void {
    this.best = this.direction === "min" ? Infinity : -Infinity;
    this.cooldownCounter = 0;
    this.wait = 0;
  }

  override onEpochEnd(epoch: number, logs?: Logs): void {
    // Keras holds the learning rate in a float32 variable and logs that value.
    if (logs) (logs as Record<string, number>).learning_rate = Math.fround(this.model.optimizer.learningRate);
    const current = this.getMonitorValue(logs);
    if (current === undefined) return;
    if (this.inCooldown()) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (this.isImprovement(current, this.best)) {
      this.best = current;
      this.wait = 0;
      return;
    }
    if (this.inCooldown()) return;
    this.wait += 1;
    if (this.wait < this.patience) return;
    const oldLr = Math.fround(this.model.optimizer.learningRate);
    if (oldLr > Math.fround(this.minLr)) {
      const newLr = Math.max(oldLr * this.factor, this.minLr);
      this.model.optimizer.learningRate = newLr;
      if (this.verbose > 0) {
        this.#print(`\nEpoch ${epoch + 1}: ReduceLROnPlateau reducing learning rate to ${pyRepr(newLr)}.`);
      }
      this.cooldownCounter = this.cooldown;
      this.wait = 0;
    }
  }
}
