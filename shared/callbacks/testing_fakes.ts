import type { Callback, CallbackModel, CallbackOptimizer, TrainParams } from "./callback.ts";

/**
 * A {@link CallbackModel} for driving callbacks by hand in tests: a few small weight arrays, a settable
 * learning rate, and `save`/`saveWeights` that really write (atomically) a small JSON file.
 */
export class FakeModel implements CallbackModel {
  stopTraining = false;
  readonly optimizer: CallbackOptimizer & { iterations: number };
  weights: Float32Array[];
  /** Paths written by `save` and `saveWeights`, in order. */
  readonly saved: string[] = [];

  constructor(learningRate = 0.001) {
    this.optimizer = { learningRate, iterations: 0 };
    this.weights = [new Float32Array([0, 0, 0]), new Float32Array([0])];
  }

  /** Sets every weight to `value`, standing in for a training step. */
  fill(value: number): void {
    for (const w of this.weights) w.fill(value);
  }

  getWeights(): Float32Array[] {
    return this.weights.map((w) => w.slice());
  }

  setWeights(weights: readonly Float32Array[]): void {
    if (weights.length !== this.weights.length) {
      throw new RangeError(`Cannot set ${weights.length} weights on a model of ${this.weights.length}`);
    }
    this.weights = weights.map((w) => w.slice());
  }

  save(path: string): Promise<void> {
    return this.#write(path, "model");
  }

  saveWeights(path: string): Promise<void> {
    return this.#write(path, "weights");
  }

  async #write(path: string, kind: string): Promise<void> {
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ kind, weights: this.weights.map((w) => [...w]) }));
    await Deno.rename(tmp, path);
    this.saved.push(path);
  }
}

/** Parameters of a `fit` call for tests. */
export function params(epochs = 10, steps = 4, verbose: 0 | 1 | 2 = 0): TrainParams {
  return { epochs, steps, verbose };
}

/**
 * Drives one `fit` by hand: epoch `i` fills the weights with `i`, then ends with `logs[i]`; stops when
 * `model.stopTraining` is set. Returns the number of epochs run.
 */
export async function fit(
  callback: Callback,
  model: FakeModel,
  logs: ReadonlyArray<Record<string, number>>,
): Promise<number> {
  callback.setModel(model);
  callback.setParams(params(logs.length));
  model.stopTraining = false;
  await callback.onTrainBegin({});
  let epoch = 0;
  for (; epoch < logs.length && !model.stopTraining; epoch++) {
    await callback.onEpochBegin(epoch, {});
    model.fill(epoch);
    await callback.onEpochEnd(epoch, { ...logs[epoch] });
  }
  await callback.onTrainEnd({});
  return epoch;
}

/** `[{ [key]: v0 }, { [key]: v1 }, …]`. */
export function series(key: string, values: readonly number[]): Array<Record<string, number>> {
  return values.map((v) => ({ [key]: v }));
}
