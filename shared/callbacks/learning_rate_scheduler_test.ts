import assert from "node:assert/strict";
import { LearningRateScheduler } from "./learning_rate_scheduler.ts";
import { FakeModel, fit, params } from "./testing_fakes.ts";

Deno.test("LearningRateScheduler reproduces the Keras docstring example (0.01 -> 0.00607 after 15 epochs)", async () => {
  const model = new FakeModel(0.01);
  const scheduler = new LearningRateScheduler((epoch, lr) => epoch < 10 ? lr : lr * Math.exp(-0.1));
  await fit(scheduler, model, Array.from({ length: 15 }, () => ({ loss: 1 })));
  assert.equal(Math.round(model.optimizer.learningRate * 1e5) / 1e5, 0.00607);
});

Deno.test("LearningRateScheduler passes the float32 rate, prints as Keras and logs learning_rate", () => {
  const printed: string[] = [];
  const seen: Array<[number, number]> = [];
  const model = new FakeModel(0.01);
  const scheduler = new LearningRateScheduler((epoch, lr) => {
    seen.push([epoch, lr]);
    return epoch === 0 ? lr : 0.5;
  }, { verbose: 1, print: (m) => printed.push(m) });
  scheduler.setModel(model);
  scheduler.setParams(params(2));
  const logs: Record<string, number> = { loss: 1 };
  for (const epoch of [0, 1]) {
    scheduler.onEpochBegin(epoch);
    scheduler.onEpochEnd(epoch, logs);
  }
  assert.deepEqual(seen, [[0, 0.009999999776482582], [1, 0.009999999776482582]]);
  assert.deepEqual(printed, [
    "\nEpoch 1: LearningRateScheduler setting learning rate to 0.009999999776482582.",
    "\nEpoch 2: LearningRateScheduler setting learning rate to 0.5.",
  ]);
  assert.equal(logs.learning_rate, 0.5);
  assert.equal(model.optimizer.learningRate, 0.5);
});

Deno.test("LearningRateScheduler rejects a non-finite or negative rate", () => {
  for (const bad of [NaN, Infinity, -0.1]) {
    const scheduler = new LearningRateScheduler(() => bad);
    scheduler.setModel(new FakeModel());
    assert.throws(() => scheduler.onEpochBegin(3), {
      name: "RangeError",
      message: `The output of the LearningRateScheduler schedule must be a finite number >= 0: got ${bad} ` +
        "at epoch 3. Fix the schedule function so it returns a valid learning rate",
    });
  }
  assert.throws(() => new LearningRateScheduler(42 as unknown as () => number), TypeError);
});
