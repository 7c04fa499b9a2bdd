import assert from "node:assert/strict";
import { initBackend, layers, optimizers, tf } from "../shared/model/mod.ts";
import { Sequential } from "./model.ts";

// Tensors in module-level data need an active backend, as in any program that imports mod.ts.
await initBackend("auto");

/** y = 2·x0 − x1 on 16 rows: a linear model learns it. */
const X = Array.from({ length: 16 }, (_, i) => [(i % 4) / 4, Math.floor(i / 4) / 4]);
const Y = X.map(([a, b]) => [2 * a! - b!]);

function linear(): Sequential {
  // No inputShape: fit builds the model from the data.
  const model = new Sequential([new layers.Dense(1)], { seed: 3 });
  model.compile({ optimizer: new optimizers.SGD({ learningRate: 0.2 }), loss: "mse", metrics: ["mae"] });
  return model;
}

Deno.test("fit builds a Sequential model from the data and trains it in-process, lowering the loss", async () => {
  const model = linear();
  const history = await model.fit(X, Y, { epochs: 30, batchSize: 4, verbose: 0 });
  assert.equal(model.network.inputs[0]!.shape[0], 2);
  assert.deepEqual(Object.keys(history.history).sort(), ["learning_rate", "loss", "mae"]);
  const loss = history.history["loss"]!;
  assert.equal(loss.length, 30);
  assert.ok(loss.at(-1)! < loss[0]! / 10, `loss ${loss[0]} → ${loss.at(-1)}`);
  assert.equal(model.lastFit?.workers, 0);
  assert.equal(model.lastFit?.steps, 30 * 4);
});

Deno.test("evaluate returns the mean squared error of predict's outputs, and validationSplit adds val_ logs", async () => {
  const model = linear();
  const history = await model.fit(X, Y, { epochs: 2, batchSize: 4, validationSplit: 0.25, verbose: 0 });
  assert.deepEqual(Object.keys(history.history).sort(), [
    "learning_rate",
    "loss",
    "mae",
    "val_loss",
    "val_mae",
  ]);
  assert.equal(model.lastFit?.steps, 2 * 3);
  const [loss, mae] = await model.evaluate(X, Y, { verbose: 0 });
  const out = await model.predict(X, { verbose: 0 });
  const predicted = out.dataSync();
  out.dispose();
  const errors = Y.map(([y], i) => predicted[i]! - y!);
  const mse = errors.reduce((s, e) => s + e * e, 0) / errors.length;
  const meanAbs = errors.reduce((s, e) => s + Math.abs(e), 0) / errors.length;
  assert.ok(Math.abs(loss! - mse) < 1e-5, `${loss} vs ${mse}`);
  assert.ok(Math.abs(mae! - meanAbs) < 1e-5, `${mae} vs ${meanAbs}`);
  assert.ok(tf.memory().numTensors < 1000);
});
