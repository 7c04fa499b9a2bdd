import { Callback, type Logs, type TrainParams } from "./callback.ts";
import { writeStdout } from "./output.ts";
import { Progbar } from "./progbar.ts";

/** Options of {@link ProgbarLogger}. */
export interface ProgbarLoggerOptions {
  /**
   * Receives the text to display, newlines included.
   * @default {write to Deno.stdout}
   */
  write?: (text: string) => void;
  /**
   * Whether the output is a terminal: the bar then redraws in place with colours; otherwise only the
   * final line of each epoch is written, without colours.
   * @default {Deno.stdout.isTerminal()}
   */
  isTTY?: boolean;
  /**
   * Monotonic clock in milliseconds.
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * Prints Keras's progress output (Keras `ProgbarLogger`). At verbose 1, an `Epoch 1/50` line, then a
 * bar such as `797/797 ━━━━━━━━━━━━━━━━━━━━ 5s 6ms/step - accuracy: 0.8312 - loss: 0.4721`; at
 * verbose 2, one line per epoch, `797/797 - 5s - 6ms/step - accuracy: 0.8312 - loss: 0.4721`.
 * Validation inside `fit` is silent; `onTestBegin`/`onTestEnd` outside `fit` (evaluate) print a bar.
 */
export class ProgbarLogger extends Callback {
  readonly #write: (text: string) => void;
  readonly #isTTY: boolean;
  readonly #now: (() => number) | undefined;
  #progbar: Progbar | null = null;
  #seen = 0;
  #target: number | null = null;
  #verbose = 1;
  #epochs = 1;
  #calledInFit = false;

  constructor(options: ProgbarLoggerOptions = {}) {
    super();
    this.#write = options.write ?? writeStdout;
    this.#isTTY = options.isTTY ?? Deno.stdout.isTerminal();
    this.#now = options.now;
  }

  override setParams(params: TrainParams): void {
    super.setParams(params);
    this.#verbose = params.verbose;
    this.#epochs = params.epochs;
    this.#target = params.steps;
  }

  override onTrainBegin(): void {
    this.#calledInFit = true;
  }

  override onTrainEnd(): void {
    this.#calledInFit = false;
  }

  override onTestBegin(): void {
    if (this.#calledInFit) return;
    this.#reset();
    this.#ensureProgbar();
  }

  override onEpochBegin(epoch: number): void {
    this.#reset();
    this.#ensureProgbar();
    if (this.#verbose > 0 && this.#epochs > 1) this.#write(`Epoch ${epoch + 1}/${this.#epochs}\n`);
  }

  override onBatchEnd(batch: number, logs?: Logs): void {
    const progbar = this.#ensureProgbar();
    this.#seen = batch + 1;
    if (this.#verbose === 1) progbar.update(this.#seen, Object.entries(logs ?? {}), false);
  }

  override onEpochEnd(_epoch: number, logs?: Logs): void {
    this.#finalize(logs);
  }

  override onTestEnd(logs?: Logs): void {
    if (!this.#calledInFit) this.#finalize(logs);
  }

  #reset(): void {
    this.#seen = 0;
    this.#progbar = null;
  }

  #ensureProgbar(): Progbar {
    this.#progbar ??= new Progbar({
      target: this.#target,
      verbose: this.#verbose === 2 ? 2 : 1,
      write: this.#verbose === 0 ? () => {} : this.#write,
      dynamic: this.#isTTY,
      ...(this.#now ? { now: this.#now } : {}),
    });
    return this.#progbar;
  }

  #finalize(logs: Logs | undefined): void {
    const progbar = this.#ensureProgbar();
    if (this.#target === null) {
      this.#target = this.#seen;
      progbar.target = this.#seen;
    }
    progbar.update(this.#target, Object.entries(logs ?? {}), true);
  }
}
