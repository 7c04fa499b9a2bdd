import assert from "node:assert/strict";
import { layers, Sequential, tf } from "../../mod.ts";
import { Engine } from "./engine.ts";
import { resolveMetric } from "./metrics.ts";
import { maxError, randomValues, requireWasmBlas } from "./backends/test_util.ts";

/** The chapter's classifier at a smaller width: Dense/BatchNorm/Dropout, softmax output. */
function model(): Sequential {
  return new Sequential([
    new layers.Dense(48, { activation: "relu", inputShape: [20] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(24, { activation: "relu" }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: 3 });
}

async function slice(backend: string) {
  await tf.setBackend(backend);
  const m = model();
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(m.network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 5 });
  const x = randomValues(16 * 20, 9);
  const y = Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 10);
  const before = tf.memory().numTensors;
  const r = engine.trainSlice(
    m.network.params,
    m.network.state,
    {
      inputs: [{ data: x, shape: [16, 20] }],
      y: { data: y, shape: [16] },
    },
    2,
    0,
  );
  assert.equal(tf.memory().numTensors, before, `${backend}: trainSlice leaks no tensors`);
  return { r, params: m.network.params.length };
}

Deno.test("Engine.trainSlice of a BatchNorm/Dropout model gives the same results on wasm-blas and cpu", async () => {
  await requireWasmBlas();
  const cpu = await slice("cpu");
  const blas = await slice("wasm-blas");
  assert.equal(cpu.r.grads.length, cpu.params);
  assert.equal(blas.r.grads.length, cpu.params);
  assert.ok(
    maxError(blas.r.grads, cpu.r.grads) < 1e-4,
    `gradient error ${maxError(blas.r.grads, cpu.r.grads)}`,
  );
  assert.ok(Math.abs(blas.r.lossSum - cpu.r.lossSum) < 1e-3 * (1 + cpu.r.lossSum));
  assert.equal(blas.r.metricSums[0], cpu.r.metricSums[0]);
  assert.ok(cpu.r.lossSum > 0 && cpu.r.metricSums[0]! >= 0 && cpu.r.metricSums[0]! <= 16);
  assert.deepEqual(blas.r.batchStats.map((s) => [s.layer, s.mean.length]), [
    ["batch_normalization", 48],
    ["batch_normalization_1", 24],
  ]);
  blas.r.batchStats.forEach((s, i) => {
    assert.ok(maxError(s.mean, cpu.r.batchStats[i]!.mean) < 1e-5);
    assert.ok(maxError(s.variance, cpu.r.batchStats[i]!.variance) < 1e-5);
    assert.ok(s.variance.every((v) => v >= 0));
  });
});
