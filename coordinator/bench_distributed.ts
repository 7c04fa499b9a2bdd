/**
 * Training-step throughput of a model in-process and over NATS with N local worker processes: the
 * pool's trainStep (compute + transfer) and the reduction, the NATS pool's own split (weights publish,
 * round trip, worker compute), and each worker's peak RSS. `tools/bench.ts` prints these rows next to
 * PyTorch DDP; this file also runs alone on the chapter MLP:
 *
 * `deno run -A coordinator/bench_distributed.ts [--batch 64,256] [--workers 1,2] [--steps 30]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine, initBackend, type Network, resolveMetric } from "../shared/model/mod.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { type Dataset, toDataset } from "./data.ts";
import { LocalPool } from "./local_pool.ts";
import { NatsPool } from "./nats_pool.ts";
import type { WorkerPool } from "./pool.ts";
import { reduceSlices } from "./reduce.ts";

/** One measured configuration. */
export interface DistributedRow {
  batch: number;
  /** `in-process` or `nats xN`. */
  pool: string;
  workers: number;
  step_ms: number;
  reduce_ms: number;
  samples_per_s: number;
  /** Peak resident memory of each worker process (the coordinator's for in-process), MiB. */
  worker_peak_rss_mib: number[];
  [phase: string]: unknown;
}

/** Options of {@link distributedRows}. */
export interface DistributedOptions {
  batches: readonly number[];
  /** Worker counts of the NATS rows; the in-process row is always measured first. */
  workers: readonly number[];
  /** Measured steps per row, after 3 warm-up steps. */
  steps: number;
  encoding?: "f32" | "bf16";
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Peak resident set (VmHWM) of a process in MiB, or -1 when /proc cannot be read. */
export function peakRssMiB(pid: number | "self"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? -1024) / 1024);
  } catch {
    return -1;
  }
}

async function measure(pool: WorkerPool, network: Network, ds: Dataset, batch: number, steps: number) {
  await pool.setData("train", ds);
  const step: number[] = [], reduce: number[] = [];
  for (let s = 0; s < steps + 3; s++) {
    const indices = new Int32Array(batch).map((_, i) => (s * batch + i) % ds.length);
    const t0 = performance.now();
    const slices = await pool.trainStep("train", {
      step: s,
      indices,
      params: network.params,
      state: network.state,
    });
    const t1 = performance.now();
    reduceSlices(slices);
    const t2 = performance.now();
    if (s >= 3) {
      step.push(t1 - t0);
      reduce.push(t2 - t1);
    }
  }
  const stepMs = median(step);
  return { step_ms: stepMs, reduce_ms: median(reduce), samples_per_s: Math.round(batch / (stepMs / 1000)) };
}

/** Measures `network` on `ds` in-process and with each NATS worker count, per batch size. */
export async function distributedRows(
  network: Network,
  ds: Dataset,
  options: DistributedOptions,
): Promise<DistributedRow[]> {
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 1 });
  const backend = await initBackend("auto");
  const rows: DistributedRow[] = [];
  for (const batch of options.batches) {
    const local = new LocalPool(engine, backend.name);
    try {
      const r = await measure(local, network, ds, batch, options.steps);
      rows.push({ batch, pool: "in-process", workers: 0, ...r, worker_peak_rss_mib: [peakRssMiB("self")] });
    } finally {
      await local.close();
    }
    for (const workers of options.workers) {
      const pool = await NatsPool.create(engine, {
        workers,
        backend: "auto",
        gradEncoding: options.encoding ?? "f32",
      });
      try {
        const r = await measure(pool, network, ds, batch, options.steps);
        const { steps: _steps, ...timings } = pool.timings() as unknown as Record<string, unknown>;
        rows.push({
          batch,
          pool: `nats x${workers}`,
          workers,
          ...r,
          ...timings,
          worker_peak_rss_mib: pool.localPids.map((pid) => peakRssMiB(pid)),
        });
      } finally {
        await pool.close();
      }
    }
  }
  return rows;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      batch: { type: "string", default: "64,256" },
      workers: { type: "string", default: "1,2" },
      steps: { type: "string", default: "30" },
      encoding: { type: "string", default: "f32" },
    },
  });
  const { fashionMnistModel } = await import("./main.ts");
  const data = await loadDataset("fashion_mnist");
  const n = 4096;
  const x = new Float32Array(n * 784);
  for (let i = 0; i < x.length; i++) x[i] = data.xTrain.data[i]! / 255;
  const ds = toDataset({ data: x, shape: [n, 784] }, {
    data: Float32Array.from(data.yTrain.subarray(0, n)),
    shape: [n],
  });
  const model = fashionMnistModel(1);
  for (
    const row of await distributedRows(model.network, ds, {
      batches: values.batch.split(",").map(Number),
      workers: values.workers.split(",").map(Number),
      steps: Number(values.steps),
      encoding: values.encoding === "bf16" ? "bf16" : "f32",
    })
  ) console.log(JSON.stringify(row));
}
