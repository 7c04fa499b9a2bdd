/**
 * The Keras training surface over real worker processes: an Embedding model (whose gradient Keras
 * squares slice by slice), optimizer options, schedules and losses with options end where the
 * in-process run ends.
 */
import assert from "node:assert/strict";
import { layers, losses, metrics, optimizers, Sequential, tf } from "../mod.ts";

const ROWS = 96, STEPS = 6, VOCAB = 20;

/** Token ids with repeats in every row (duplicate ids are what makes the sparse squares differ). */
function data(): { x: tf.Tensor; y: tf.Tensor } {
  const ids = Array.from({ length: ROWS * STEPS }, (_, i) => (i * 7 + (i >> 3)) % VOCAB);
  const y = Array.from(
    { length: ROWS },
    (_, r) => ids.slice(r * STEPS, (r + 1) * STEPS).filter((t) => t < 8).length / STEPS,
  );
  return { x: tf.tensor2d(ids, [ROWS, STEPS], "int32"), y: tf.tensor2d(y, [ROWS, 1]) };
}

function model(optimizer: optimizers.Optimizer, loss: string | losses.LossSpec): Sequential {
  const m = new Sequential([
    new layers.Embedding(VOCAB, 4, { inputShape: [STEPS] }),
    new layers.GlobalAveragePooling1D(),
    new layers.Dense(1),
  ], { seed: 11 });
  m.compile({ optimizer, loss, metrics: ["mae"] });
  return m;
}

const CASES: [string, () => optimizers.Optimizer, string | losses.LossSpec][] = [
  [
    "Adam (amsgrad, clipnorm) with Huber",
    () => new optimizers.Adam({ learningRate: 0.05, amsgrad: true, clipnorm: 0.05 }),
    new losses.Huber({ delta: 0.3 }),
  ],
  [
    "AdamW with CosineDecay and globalClipnorm",
    () =>
      new optimizers.AdamW({
        learningRate: new optimizers.schedules.CosineDecay({
          initialLearningRate: 0.05,
          decaySteps: 6,
          warmupTarget: 0.1,
          warmupSteps: 2,
        }),
        globalClipnorm: 0.1,
      }),
    "mse",
  ],
  [
    "RMSprop (centered, momentum)",
    () => new optimizers.RMSprop({ learningRate: 0.01, centered: true, momentum: 0.5 }),
    "mae",
  ],
];

for (
  const [[name, makeOptimizer, loss], allreduce] of CASES.map((c, i) =>
    [c, i === 0 ? "ring" : "star"] as const
  )
) {
  Deno.test(`Embedding model, ${name}: 2 workers (${allreduce}) end with the in-process weights and History`, async () => {
    const { x, y } = data();
    const fit = { epochs: 2, batchSize: 32, verbose: 0 as const, shuffle: true };
    const local = model(makeOptimizer(), loss);
    const localHistory = await local.fit(x, y, fit);
    const remote = model(makeOptimizer(), loss);
    const remoteHistory = await remote.fit(x, y, { ...fit, distribute: { workers: 2, allreduce } });
    let diff = 0;
    local.network.params.forEach((v, i) => diff = Math.max(diff, Math.abs(v - remote.network.params[i]!)));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    for (const key of ["loss", "mae"]) {
      localHistory.history[key]!.forEach((v, i) =>
        assert.ok(
          Math.abs(v - remoteHistory.history[key]![i]!) <= 1e-5,
          `${key}[${i}]: ${v} vs ${remoteHistory.history[key]![i]}`,
        )
      );
    }
    assert.deepEqual(remote.optimizer.slots.length, local.optimizer.slots.length);
    if (allreduce === "ring") assert.equal(remote.lastFit!.timings.ring_steps, 6, "every step on the ring");
  });
}

Deno.test("AUC, Precision and Recall over 3 workers on a ring equal the in-process values: confusion counts are summed, not values", async () => {
  const { x, y } = data();
  const labels = tf.cast(tf.greater(y, tf.mean(y)), "float32");
  const build = () => {
    const m = new Sequential([
      new layers.Embedding(VOCAB, 4, { inputShape: [STEPS] }),
      new layers.GlobalAveragePooling1D(),
      new layers.Dense(1, { activation: "sigmoid" }),
    ], { seed: 5 });
    m.compile({
      optimizer: new optimizers.Adam({ learningRate: 0.05 }),
      loss: "binary_crossentropy",
      metrics: [
        "auc",
        new metrics.Precision({ thresholds: 0.4 }),
        "recall",
        new metrics.AUC({ numThresholds: 7, name: "auc7" }),
      ],
    });
    return m;
  };
  const fit = { epochs: 2, batchSize: 24, verbose: 0 as const, validationSplit: 0.25 };
  const local = build();
  const localHistory = (await local.fit(x, labels, fit)).history;
  const remote = build();
  const remoteHistory =
    (await remote.fit(x, labels, { ...fit, distribute: { workers: 3, allreduce: "ring" } }))
      .history;
  assert.deepEqual(Object.keys(remoteHistory).sort(), Object.keys(localHistory).sort());
  assert.equal(remote.lastFit!.timings.ring_steps, 6, "every step on the ring");
  for (
    const key of ["auc", "precision", "recall", "auc7", "val_auc", "val_precision", "val_recall", "val_auc7"]
  ) {
    localHistory[key]!.forEach((v, i) =>
      assert.ok(
        Math.abs(v - remoteHistory[key]![i]!) <= 1e-6,
        `${key}[${i}]: ${v} vs ${remoteHistory[key]![i]}`,
      )
    );
  }
  assert.ok(
    localHistory.auc!.every((v) => v > 0 && v <= 1),
    `auc ${localHistory.auc} precision ${localHistory.precision}`,
  );
});
