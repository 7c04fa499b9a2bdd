/**
 * Per-step times of the chapter MLP (784-512-256-128-10) in-process and over NATS with N local
 * workers: the pool's trainStep (compute + transfer), the reduction, and the NATS pool's own split
 * (weights publish, round trip, worker compute, transfer = round − compute).
 *
 * Run: `deno run -A coordinator/bench_distributed.ts [--batch 64,256] [--workers 1,2] [--steps 30]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { layers, Sequential } from "../mod.ts";
import { Engine, initBackend, resolveMetric } from "../shared/model/mod.ts";
import { toDataset } from "./data.ts";
import { LocalPool } from "./local_pool.ts";
import { NatsPool } from "./nats_pool.ts";
import type { WorkerPool } from "./pool.ts";
import { reduceSlices } from "./reduce.ts";

const { values } = parseArgs({
  options: {
    batch: { type: "string", default: "64,256" },
    workers: { type: "string", default: "1,2" },
    steps: { type: "string", default: "30" },
    encoding: { type: "string", default: "f32" },
  },
});
const batches = values.batch.split(",").map(Number);
const workerCounts = values.workers.split(",").map(Number);
const steps = Number(values.steps);
const encoding = values.encoding === "bf16" ? "bf16" : "f32";

const model = new Sequential([
  new layers.Dense(512, { activation: "relu", inputShape: [784] }),
  new layers.Dense(256, { activation: "relu" }),
  new layers.Dense(128, { activation: "relu" }),
  new layers.Dense(10, { activation: "softmax" }),
], { seed: 1 });
const n = 4096;
const x = new Float32Array(n * 784).map((_, i) => ((i * 2654435761) % 1000) / 1000);
const y = new Float32Array(n).map((_, i) => i % 10);
const ds = toDataset({ data: x, shape: [n, 784] }, { data: y, shape: [n] });
const loss = "sparse_categorical_crossentropy" as const;
const engine = new Engine(model.network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 1 });
const backend = await initBackend("auto");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function measure(pool: WorkerPool, batch: number) {
  await pool.setData("train", ds);
  const step: number[] = [], reduce: number[] = [];
  for (let s = 0; s < steps + 3; s++) {
    const indices = new Int32Array(batch).map((_, i) => (s * batch + i) % n);
    const t0 = performance.now();
    const slices = await pool.trainStep("train", {
      step: s,
      indices,
      params: model.network.params,
      state: model.network.state,
    });
    const t1 = performance.now();
    reduceSlices(slices);
    const t2 = performance.now();
    if (s >= 3) {
      step.push(t1 - t0);
      reduce.push(t2 - t1);
    }
  }
  return {
    step_ms: median(step),
    reduce_ms: median(reduce),
    samples_per_s: Math.round(batch / (median(step) / 1000)),
  };
}

console.log(
  `params: ${model.network.params.length}, backend ${backend.name}, ${steps} steps, gradients ${encoding}`,
);
for (const batch of batches) {
  const local = new LocalPool(engine, backend.name);
  console.log(JSON.stringify({ batch, pool: "in-process", ...(await measure(local, batch)) }));
  await local.close();
  for (const workers of workerCounts) {
    const pool = await NatsPool.create(engine, { workers, backend: "auto", gradEncoding: encoding });
    try {
      const r = await measure(pool, batch);
      const t = pool.timings();
      console.log(JSON.stringify({ batch, pool: `nats x${workers}`, ...r, ...t, steps: undefined }));
    } finally {
      await pool.close();
    }
  }
}
