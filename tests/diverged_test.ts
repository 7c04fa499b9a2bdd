/**
 * A model that diverges on workers: its losses become NaN or infinite, which JSON cannot carry. The run
 * goes on as in-process (Keras records the nan losses) instead of dropping the workers and retrying
 * the step forever.
 */
import assert from "node:assert/strict";
import { layers, optimizers, Sequential } from "../mod.ts";
import { EventLog } from "./support/pool_events.ts";

const ROWS = 64;

function diverging(): Sequential {
  const model = new Sequential([
    new layers.Dense(8, { activation: "relu", inputShape: [4] }),
    new layers.Dense(1),
  ], { seed: 2 });
  // A learning rate no model survives: the squared error overflows to Infinity, then NaN.
  model.compile({ optimizer: new optimizers.SGD({ learningRate: 1e12 }), loss: "mean_squared_error" });
  return model;
}

const x = { data: Float32Array.from({ length: ROWS * 4 }, (_, i) => ((i * 37) % 11) - 5), shape: [ROWS, 4] };
const y = { data: Float32Array.from({ length: ROWS }, (_, i) => (i % 7) * 100), shape: [ROWS] };
const FIT = { epochs: 3, batchSize: 16, verbose: 0 as const, shuffle: false };

Deno.test("a model that diverges on two workers finishes its epochs with the in-process nan losses", async () => {
  const local = await diverging().fit(x, y, FIT);
  const localLoss = local.history.loss as number[];
  assert.ok(localLoss.some((v) => !Number.isFinite(v)), `the model diverges in-process: ${localLoss}`);

  const log = new EventLog();
  const model = diverging();
  const history = await model.fit(x, y, { ...FIT, distribute: { workers: 2, listeners: log.listeners } });
  const loss = history.history.loss as number[];
  assert.equal(loss.length, 3, "every epoch ran");
  assert.deepEqual(loss.map((v) => Number.isFinite(v)), localLoss.map((v) => Number.isFinite(v)));
  assert.equal(log.all("dropped").length, 0, `no worker was dropped:\n${log.toString()}`);
  assert.equal(model.lastFit!.workers, 2);
  log.find(
    "warning",
    (e) => /non-finite .* reproduced/.test(e.message),
    "the warning that the model diverged",
  );
});
