import assert from "node:assert/strict";
import { EarlyStopping } from "./early_stopping.ts";
import { FakeModel, fit, series } from "./testing_fakes.ts";

Deno.test("EarlyStopping stops once patience is exhausted and reports the epoch", async () => {
  const printed: string[] = [];
  const stop = new EarlyStopping({ patience: 2, verbose: 1, print: (m) => printed.push(m) });
  const ran = await fit(stop, new FakeModel(), series("val_loss", [1.0, 0.9, 0.95, 0.93, 0.92, 0.5]));
  assert.equal(ran, 4);
  assert.equal(stop.stoppedEpoch, 3);
  assert.equal(stop.bestEpoch, 1);
  assert.equal(stop.best, 0.9);
  assert.deepEqual(printed, ["Epoch 4: early stopping"]);
});

Deno.test("EarlyStopping with patience 0 stops at the first epoch without improvement, never at epoch 0", async () => {
  const stop = new EarlyStopping({ monitor: "loss" });
  assert.equal(await fit(stop, new FakeModel(), series("loss", [1, 2, 0.5])), 2);
  assert.equal(stop.stoppedEpoch, 1);
});

Deno.test("EarlyStopping restores the best weights after stopping early", async () => {
  const printed: string[] = [];
  const model = new FakeModel();
  const stop = new EarlyStopping({
    patience: 1,
    restoreBestWeights: true,
    verbose: 1,
    print: (m) => printed.push(m),
  });
  assert.equal(await fit(stop, model, series("val_loss", [0.9, 0.5, 0.7, 0.8])), 3);
  assert.deepEqual(model.weights.map((w) => [...w]), [[1, 1, 1], [1]]);
  assert.deepEqual(printed, [
    "Epoch 3: early stopping",
    "Restoring model weights from the end of the best epoch: 2.",
  ]);
});

Deno.test("EarlyStopping restores the best weights when training ends without an early stop", async () => {
  const model = new FakeModel();
  const stop = new EarlyStopping({ patience: 5, restoreBestWeights: true });
  assert.equal(await fit(stop, model, series("val_loss", [0.5, 0.4, 0.6])), 3);
  assert.equal(stop.stoppedEpoch, 0);
  assert.deepEqual(model.weights.map((w) => [...w]), [[1, 1, 1], [1]]);
});

Deno.test("EarlyStopping without restoreBestWeights keeps the last weights", async () => {
  const model = new FakeModel();
  await fit(new EarlyStopping({ patience: 5 }), model, series("val_loss", [0.5, 0.4, 0.6]));
  assert.deepEqual(model.weights.map((w) => [...w]), [[2, 2, 2], [2]]);
});

Deno.test("EarlyStopping with a baseline stops when the baseline is never beaten", async () => {
  // Improving on the best but not on the baseline does not reset the wait (Keras).
  const withBaseline = new EarlyStopping({ patience: 2, baseline: 0.5 });
  assert.equal(await fit(withBaseline, new FakeModel(), series("val_loss", [0.8, 0.9, 0.95, 0.99])), 2);
  assert.equal(withBaseline.stoppedEpoch, 1);
  const without = new EarlyStopping({ patience: 2 });
  assert.equal(await fit(without, new FakeModel(), series("val_loss", [0.8, 0.9, 0.95, 0.99])), 3);
  // Beating the baseline resets the wait.
  const beaten = new EarlyStopping({ patience: 2, baseline: 0.5 });
  assert.equal(await fit(beaten, new FakeModel(), series("val_loss", [0.4, 0.45, 0.46, 0.47])), 3);
});

Deno.test("EarlyStopping restores the best epoch even when no epoch beats the baseline", async () => {
  const model = new FakeModel();
  const stop = new EarlyStopping({ patience: 2, baseline: 0.1, restoreBestWeights: true });
  assert.equal(await fit(stop, model, series("val_loss", [0.8, 0.7, 0.75, 0.9])), 3);
  assert.equal(stop.bestEpoch, 1);
  assert.deepEqual([...model.weights[1]!], [1]);
});

Deno.test("EarlyStopping ignores epochs before startFromEpoch", async () => {
  const warm = new EarlyStopping({ startFromEpoch: 2 });
  assert.equal(await fit(warm, new FakeModel(), series("val_loss", [1, 2, 3, 2.5, 2.6, 1])), 5);
  assert.equal(warm.stoppedEpoch, 4);
  assert.equal(warm.bestEpoch, 3);
  const cold = new EarlyStopping();
  assert.equal(await fit(cold, new FakeModel(), series("val_loss", [1, 2, 3, 2.5, 2.6, 1])), 2);
});

Deno.test("EarlyStopping infers max for accuracy and applies minDelta", async () => {
  const acc = new EarlyStopping({ monitor: "val_accuracy" });
  assert.equal(acc.direction, "max");
  assert.equal(await fit(acc, new FakeModel(), series("val_accuracy", [0.5, 0.6, 0.55, 0.9])), 3);
  const delta = new EarlyStopping({ monitor: "val_accuracy", minDelta: -0.1 });
  assert.equal(delta.minDelta, 0.1);
  assert.equal(await fit(delta, new FakeModel(), series("val_accuracy", [0.5, 0.55, 0.9])), 2);
  const min = new EarlyStopping({ monitor: "val_accuracy", mode: "min" });
  assert.equal(await fit(min, new FakeModel(), series("val_accuracy", [0.5, 0.6, 0.4])), 2);
});

Deno.test("EarlyStopping warns with the available metrics when the monitored one is missing", async () => {
  const warnings: string[] = [];
  const stop = new EarlyStopping({ monitor: "val_los", mode: "min", warn: (m) => warnings.push(m) });
  const logs = Array.from({ length: 3 }, () => ({ loss: 1, accuracy: 0.5, val_loss: 1 }));
  assert.equal(await fit(stop, new FakeModel(), logs), 3);
  assert.equal(warnings.length, 3);
  assert.equal(
    warnings[0],
    "Early stopping conditioned on metric `val_los` which is not available. " +
      "Available metrics are: loss,accuracy,val_loss",
  );
});

Deno.test("EarlyStopping resets its state at train begin so it can be reused", async () => {
  const model = new FakeModel();
  const stop = new EarlyStopping({ patience: 1, restoreBestWeights: true });
  assert.equal(await fit(stop, model, series("val_loss", [0.1, 0.2, 0.3])), 2);
  assert.equal(stop.stoppedEpoch, 1);
  assert.equal(await fit(stop, model, series("val_loss", [5, 4, 3])), 3);
  assert.equal(stop.stoppedEpoch, 0);
  assert.equal(stop.best, 3);
  assert.deepEqual([...model.weights[1]!], [2]);
});

Deno.test("EarlyStopping rejects bad options in the constructor", () => {
  assert.throws(() => new EarlyStopping({ patience: -1 }), {
    name: "RangeError",
    message: "EarlyStopping does not support patience=-1. Use an integer >= 0",
  });
  assert.throws(() => new EarlyStopping({ patience: 1.5 }), RangeError);
  assert.throws(() => new EarlyStopping({ minDelta: NaN }), /minDelta=NaN/);
  assert.throws(() => new EarlyStopping({ startFromEpoch: -2 }), /startFromEpoch=-2/);
  assert.throws(
    () => new EarlyStopping({ mode: "up" as "max" }),
    /mode 'up' is unknown. Use one of "auto", "min", "max"/,
  );
  assert.throws(
    () => new EarlyStopping({ monitor: "val_custom" }),
    /monitor=val_custom, but cannot determine automatically .* Pass mode: "max"/,
  );
});

Deno.test("EarlyStopping does not mutate the caller's options", () => {
  const options = Object.freeze({ monitor: "loss", minDelta: -0.5 });
  const stop = new EarlyStopping(options);
  assert.equal(stop.minDelta, -0.5);
  assert.deepEqual(options, { monitor: "loss", minDelta: -0.5 });
});
