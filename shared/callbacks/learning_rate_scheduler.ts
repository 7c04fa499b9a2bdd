import { Callback, type Logs } from "./callback.ts";
import { checkNumber } from "./monitor.ts";
import { defaultPrint, type PrintFn } from "./output.ts";
import { pyRepr } from "./python_format.ts";

/** Returns the learning rate for a 0-based `epoch`, given the current rate `lr`. */
export type LearningRateSchedule = (epoch: number, lr: number) => number;

/** Options of {@link LearningRateScheduler}. */
export interface LearningRateSchedulerOptions {
  /**
   * 0: quiet; 1: print each update.
   * @default {0}
   */
  verbose?: number;
  /**
   * Receives verbose messages.
   * @default {console.log}
   */
  print?: PrintFn;
}

/**
 * Sets the learning rate at the start of each epoch from `schedule(epoch, lr)` (Keras
 * `LearningRateScheduler`), and adds `learning_rate` to the epoch logs. As in Keras, `lr` is the
 * current rate as a float32 value.
 *
 * @example
 * ```ts
 * const scheduler = new LearningRateScheduler((epoch, lr) => epoch < 10 ? lr : lr * Math.exp(-0.1));
 * ```
 */
export class LearningRateScheduler extends Callback {
  readonly schedule: LearningRateSchedule;
  readonly verbose: number;
  readonly #print: PrintFn;

  constructor(schedule: LearningRateSchedule, options: LearningRateSchedulerOptions = {}) {
    super();
    if (typeof schedule !== "function") {
      throw new TypeError(
        `LearningRateScheduler needs a schedule function: received ${String(schedule)}. ` +
          `Pass (epoch, lr) => newLr`,
      );
    }
    this.schedule = schedule;
    this.verbose = checkNumber("LearningRateScheduler", "verbose", options.verbose ?? 0, {
      min: 0,
      integer: true,
    });
    this.#print = options.print ?? defaultPrint;
  }

  override onEpochBegin(epoch: number): void {
    const lr = this.schedule(epoch, Math.fround(this.model.optimizer.learningRate));
    if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
      throw new RangeError(
        `The output of the LearningRateScheduler schedule must be a finite number >= 0: got ${String(lr)} ` +
          `at epoch ${epoch}. Fix the schedule function so it returns a valid learning rate`,
      );
    }
    this.model.optimizer.learningRate = lr;
    if (this.verbose > 0) {
      this.#print(`\nEpoch ${epoch + 1}: LearningRateScheduler setting learning rate to ${pyRepr(lr)}.`);
    }
  }

  override onEpochEnd(_epoch: number, logs?: Logs): void {
    // Keras holds the learning rate in a float32 variable and logs that value.
    if (logs) (logs as Record<string, number>).learning_rate = Math.fround(this.model.optimizer.learningRate);
  }
}
