import { Callback, type Logs } from "./callback.ts";
import { defaultPrint, type PrintFn } from "./output.ts";
import { pyRepr } from "./python_format.ts";

/** Options of {@link TerminateOnNaN}. */
export interface TerminateOnNaNOptions {
  /**
   * Throw at once instead of stopping gracefully (which still runs every `onTrainEnd`).
   * @default {false}
   */
  raiseError?: boolean;
  /**
   * Receives the termination message.
   * @default {console.log}
   */
  print?: PrintFn;
}

/**
 * Stops training when a batch's `loss` is NaN or infinite (Keras `TerminateOnNaN`): prints
 * `Batch N: Invalid loss, terminating training` and sets `model.stopTraining`.
 */
export class TerminateOnNaN extends Callback {
  readonly raiseError: boolean;
  readonly #print: PrintFn;

  constructor(options: TerminateOnNaNOptions = {}) {
    super();
    this.raiseError = options.raiseError ?? false;
    this.#print = options.print ?? defaultPrint;
  }

  override onBatchEnd(batch: number, logs?: Logs): void {
    const loss = logs?.loss;
    if (loss === undefined || Number.isFinite(loss)) return;
    if (this.raiseError) {
      throw new Error(
        `NaN or Inf loss encountered at batch ${batch}. Loss value: ${pyRepr(loss)}. ` +
          `Terminating training immediately.`,
      );
    }
    this.#print(`Batch ${batch}: Invalid loss, terminating training`);
    this.model.stopTraining = true;
  }
}
