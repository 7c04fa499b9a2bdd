import { Callback, type CallbackModel, type Logs, type TrainParams } from "./callback.ts";
import { History } from "./history.ts";
import { ProgbarLogger, type ProgbarLoggerOptions } from "./progbar_logger.ts";

/** Options of {@link CallbackList}. */
export interface CallbackListOptions {
  /** The model the callbacks act on. */
  model: CallbackModel;
  /** Parameters of the `fit` call. */
  params: TrainParams;
  /**
   * Append a {@link History} unless one is in the list.
   * @default {true}
   */
  addHistory?: boolean;
  /**
   * Append a {@link ProgbarLogger} unless one is in the list.
   * @default {params.verbose > 0}
   */
  addProgbar?: boolean;
  /**
   * Options of the {@link ProgbarLogger} this list adds.
   * @default {{}}
   */
  progbar?: ProgbarLoggerOptions;
}

/**
 * Runs a list of callbacks in order, awaiting each hook (Keras `CallbackList`). As `fit` does in Keras,
 * it appends a {@link History} and, when `params.verbose > 0`, a {@link ProgbarLogger}, unless the list
 * already holds one. Each hook passes every callback the same fresh copy of the logs, so a key a
 * callback adds (such as `learning_rate`) reaches the callbacks after it, the History included.
 */
export class CallbackList extends Callback {
  /** The callbacks, in call order, the added ones last. */
  readonly callbacks: readonly Callback[];
  /** The History of this list (the user's, or the one added). */
  readonly history: History | null;
  /** The logs of the last `onEpochEnd`, with the keys callbacks added (e.g. `learning_rate`). */
  epochLogs: Logs = {};

  constructor(callbacks: readonly Callback[], options: CallbackListOptions) {
    super();
    const list = [...callbacks];
    let history = list.find((c) => c instanceof History) ?? null;
    if (history === null && (options.addHistory ?? true)) {
      history = new History();
      list.push(history);
    }
    const hasProgbar = list.some((c) => c instanceof ProgbarLogger);
    if (!hasProgbar && (options.addProgbar ?? options.params.verbose > 0)) {
      list.push(new ProgbarLogger(options.progbar ?? {}));
    }
    this.callbacks = list;
    this.history = history;
    this.setModel(options.model);
    this.setParams(options.params);
  }

  override setModel(model: CallbackModel): void {
    super.setModel(model);
    for (const c of this.callbacks) c.setModel(model);
  }

  override setParams(params: TrainParams): void {
    super.setParams(params);
    for (const c of this.callbacks) c.setParams(params);
  }

  override async onTrainBegin(logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onTrainBegin(shared);
  }

  override async onTrainEnd(logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onTrainEnd(shared);
  }

  override async onEpochBegin(epoch: number, logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onEpochBegin(epoch, shared);
  }

  /** Runs every `onEpochEnd`, then keeps the logs as the last callback saw them in {@link epochLogs}. */
  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onEpochEnd(epoch, shared);
    this.epochLogs = shared;
  }

  override async onBatchBegin(batch: number, logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onBatchBegin(batch, shared);
  }

  override async onBatchEnd(batch: number, logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onBatchEnd(batch, shared);
  }

  override async onTestBegin(logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onTestBegin(shared);
  }

  override async onTestEnd(logs?: Logs): Promise<void> {
    const shared = { ...logs };
    for (const c of this.callbacks) await c.onTestEnd(shared);
  }
}
