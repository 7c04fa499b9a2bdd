import { Callback, type Logs } from "./callback.ts";

/**
 * Records epoch logs (Keras `History`): `history[key]` holds one value per epoch, keys in the order
 * they first arrive. `CallbackList` adds one to every `fit`.
 */
export class History extends Callback {
  /** Values per log key, one per epoch. */
  history: Record<string, number[]> = {};
  /** 0-based epoch numbers recorded. */
  epoch: number[] = [];

  override onTrainBegin(): void {
    this.history = {};
    this.epoch = [];
  }

  /** The epochs recorded so far, for resuming a run (see `BackupAndRestore`). */
  getState(): { history: Record<string, number[]>; epoch: number[] } {
    return { history: structuredClone(this.history), epoch: [...this.epoch] };
  }

  /** Restores what {@link getState} returned. */
  setState(state: unknown): void {
    const s = state as { history: Record<string, number[]>; epoch: number[] };
    this.history = structuredClone(s.history);
    this.epoch = [...s.epoch];
  }

  override onEpochEnd(epoch: number, logs: Logs = {}): void {
    this.epoch.push(epoch);
    for (const [key, value] of Object.entries(logs)) (this.history[key] ??= []).push(value);
  }
}
