import assert from "node:assert/strict";
import { ReduceLROnPlateau } from "./reduce_lr_on_plateau.ts";
import { FakeModel, params, series } from "./testing_fakes.ts";

/** Runs every epoch; returns the learning rate each epoch logged and the rate after it. */
function run(cb: ReduceLROnPlateau, model: FakeModel, key: string, values: number[]) {
  cb.setModel(model);
  cb.setParams(params(values.length));
  cb.onTrainBegin();
  const logged: number[] = [];
  const after: number[] = [];
  for (const [epoch, logs] of series(key, values).entries()) {
    cb.onEpochEnd(epoch, logs);
    logged.push(logs.learning_rate!);
    after.push(model.optimizer.learningRate);
  }
  return { logged, after };
}

Deno.test("ReduceLROnPlateau reduces after patience epochs on a plateau, with Keras's float32 numbers", () => {
  const printed: string[] = [];
  const model = new FakeModel(0.001);
  const cb = new ReduceLROnPlateau({ patience: 2, verbose: 1, print: (m) => printed.push(m) });
  const { logged, after } = run(cb, model, "val_loss", [1, 1, 1, 0.5, 0.5, 0.5]);
  // Keras keeps the rate in a float32 variable: 0.001 reads back as 0.0010000000474974513.
  assert.deepEqual(logged.slice(0, 3), [0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513]);
  assert.equal(after[2], 0.00010000000474974513);
  assert.equal(logged[3], Math.fround(0.00010000000474974513));
  assert.equal(after[5], Math.fround(0.00010000000474974513) * 0.1);
  assert.deepEqual(printed, [
    "\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.00010000000474974513.",
    // Python: repr(float(np.float32(0.00010000000474974513)) * 0.1)
    "\nEpoch 6: ReduceLROnPlateau reducing learning rate to 1.0000000474974514e-05.",
  ]);
});

Deno.test("ReduceLROnPlateau ignores changes smaller than minDelta", () => {
  const cb = new ReduceLROnPlateau({ patience: 1, minDelta: 0.1 });
  const { after } = run(cb, new FakeModel(1), "val_loss", [1, 0.95, 0.8]);
  assert.equal(after[1], Math.fround(1) * 0.1);
  assert.equal(after[2], 0.1); // 0.8 < 1 - 0.1 is an improvement
});

Deno.test("ReduceLROnPlateau waits out the cooldown between reductions", () => {
  const reductions = (cooldown: number) => {
    const cb = new ReduceLROnPlateau({ patience: 1, cooldown, factor: 0.5 });
    const { after } = run(cb, new FakeModel(1), "val_loss", [1, 1, 1, 1, 1, 1]);
    return after;
  };
  assert.deepEqual(reductions(2), [1, 0.5, 0.5, 0.25, 0.25, 0.125]);
  assert.deepEqual(reductions(0), [1, 0.5, 0.25, 0.125, 0.0625, 0.03125]);
});

Deno.test("ReduceLROnPlateau never goes below minLr", () => {
  const printed: string[] = [];
  const cb = new ReduceLROnPlateau({ patience: 0, minLr: 0.0005, verbose: 1, print: (m) => printed.push(m) });
  const model = new FakeModel(0.001);
  const { after } = run(cb, model, "val_loss", [1, 1, 1, 1]);
  assert.deepEqual(after.slice(1), [0.0005, 0.0005, 0.0005]);
  assert.deepEqual(printed, ["\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.0005."]);
});

Deno.test("ReduceLROnPlateau monitors accuracy upwards in auto mode", () => {
  const cb = new ReduceLROnPlateau({ monitor: "val_accuracy", patience: 1, factor: 0.5 });
  assert.equal(cb.direction, "max");
  const { after } = run(cb, new FakeModel(1), "val_accuracy", [0.5, 0.6, 0.55, 0.7]);
  assert.deepEqual(after, [1, 1, 0.5, 0.5]);
  // Keras's own rule for this callback: any name without "acc" is minimized.
  assert.equal(new ReduceLROnPlateau({ monitor: "val_auc" }).direction, "min");
});

Deno.test("ReduceLROnPlateau warns with the available metrics, learning_rate included", () => {
  const warnings: string[] = [];
  const cb = new ReduceLROnPlateau({ monitor: "val_los", warn: (m) => warnings.push(m) });
  cb.setModel(new FakeModel());
  cb.onTrainBegin();
  cb.onEpochEnd(0, { loss: 1, val_loss: 2 });
  assert.deepEqual(warnings, [
    "Learning rate reduction is conditioned on metric `val_los` which is not available. " +
    "Available metrics are: loss,val_loss,learning_rate.",
  ]);
});

Deno.test("ReduceLROnPlateau resets at train begin", () => {
  const cb = new ReduceLROnPlateau({ patience: 2 });
  const model = new FakeModel(1);
  run(cb, model, "val_loss", [1, 1]);
  assert.equal(cb.wait, 1);
  run(cb, model, "val_loss", [5]);
  assert.equal(cb.wait, 0);
  assert.equal(cb.best, 5);
});

Deno.test("ReduceLROnPlateau rejects bad options in the constructor", () => {
  assert.throws(() => new ReduceLROnPlateau({ factor: 1.5 }), {
    name: "RangeError",
    message:
      "ReduceLROnPlateau does not support a factor >= 1.0: received factor=1.5. Use a factor in (0, 1)",
  });
  assert.throws(() => new ReduceLROnPlateau({ factor: 0 }), /factor <= 0/);
  assert.throws(() => new ReduceLROnPlateau({ patience: -3 }), /patience=-3/);
  assert.throws(() => new ReduceLROnPlateau({ cooldown: 0.5 }), /cooldown=0.5. Use an integer >= 0/);
  assert.throws(() => new ReduceLROnPlateau({ minLr: -1 }), /minLr=-1. Use a finite number >= 0/);
});
