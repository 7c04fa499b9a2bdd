/**
 * The coordinator's traffic per step, star against ring (`SHOAL_BENCH_PARTS=scale`): N = 2, 4, 8 and
 * 16 worker processes on loopback, a model whose flat parameter vector is 8 MiB (an Embedding of
 * 524,288 × 4 and a 2-unit softmax: almost no compute), the data plane over TCP only (no Unix socket,
 * no shared memory), as between hosts. For each N and reduction, a few warm-up steps, then measured
 * steps: the bytes the coordinator read and wrote on its workers' connections per step (frames whole),
 * the median step time, and the largest peak resident memory of a worker process (VmHWM). Each row ends
 * with one JSON line:
 * `{"allreduce", "workers", "param_bytes", "coordinator_bytes_per_step", "step_ms", "worker_peak_rss_mb"}`.
 *
 * On a 2-core machine step_ms shows the trend only (16 workers share 2 cores); the bytes are the
 * claim: the star's grow as 2·N·S, the ring's stay near 2·S.
 *
 * Environment: SHOAL_BENCH_SCALE_WORKERS (default `2,4,8,16`), SHOAL_BENCH_SCALE_STEPS (measured steps,
 * default 5), SHOAL_BACKEND (default auto).
 *
 * @module
 */
import { layers, Sequential } from "../mod.ts";
import { Engine, resolveMetric } from "../shared/model/mod.ts";
import { toDataset } from "../coordinator/data.ts";
import { DistributedPool } from "../coordinator/distributed/pool.ts";
import { median } from "../shared/stats.ts";

/** Embedding rows: 524,288 × 4 float32 = 8 MiB of parameters. */
const VOCABULARY = 512 * 1024;
const BATCH = 32;
const WARMUP_STEPS = 2;

/** One measured configuration, as printed. */
export interface ScaleRow {
  allreduce: "star" | "ring";
  workers: number;
  param_bytes: number;
  coordinator_bytes_per_step: number;
  step_ms: number;
  /** The largest peak resident set (VmHWM) of a worker process, in MB; null where /proc has none. */
  worker_peak_rss_mb: number | null;
}

/** Peak resident set of process `pid` in MB (`VmHWM` of /proc/PID/status), or null where unknown. */
function peakRssMb(pid: number): number | null {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

/** The benchmark's model: big parameters, tiny compute. */
function scaleModel(): Sequential {
  const model = new Sequential([
    new layers.Embedding(VOCABULARY, 4, { inputShape: [1] }),
    new layers.Flatten(),
    new layers.Dense(2, { activation: "softmax" }),
  ], { seed: 1 });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy" });
  return model;
}

/** Measures one reduction on `workers` workers. */
async function measure(allreduce: "star" | "ring", workers: number, steps: number): Promise<ScaleRow> {
  const model = scaleModel();
  const network = model.network;
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(network, { loss, metrics: [resolveMetric("accuracy", loss, 2)], seed: 1 });
  const rows = 4096;
  const ids = Float32Array.from({ length: rows }, (_, i) => (i * 7919) % VOCABULARY);
  const labels = Float32Array.from({ length: rows }, (_, i) => i % 2);
  const ds = toDataset({ data: ids, shape: [rows, 1] }, { data: labels, shape: [rows] });
  const pool = await DistributedPool.create(engine, {
    workers,
    backend: Deno.env.get("SHOAL_BACKEND") ?? "auto",
    quiet: true,
    transport: "direct",
    dataUnix: false,
    allreduce,
    requestTimeoutSeconds: 300,
    stepTimeoutFloorSeconds: 60,
  });
  try {
    await pool.setData("train", ds);
    const times: number[] = [];
    let before = pool.traffic();
    for (let s = 0; s < WARMUP_STEPS + steps; s++) {
      if (s === WARMUP_STEPS) before = pool.traffic();
      const indices = Int32Array.from({ length: BATCH }, (_, i) => (s * BATCH + i) % rows);
      const t0 = performance.now();
      await pool.trainStep("train", { step: s, indices, params: network.params, state: network.state });
      if (s >= WARMUP_STEPS) times.push(performance.now() - t0);
    }
    const after = pool.traffic();
    const peaks = pool.localPids.map(peakRssMb).filter((mb): mb is number => mb !== null);
    if (pool.workers !== workers) {
      throw new Error(`Lost workers while measuring: ${pool.workers} of ${workers} left`);
    }
    const ringSteps = pool.timings().ring_steps;
    if ((allreduce === "ring") !== (ringSteps > 0)) {
      throw new Error(`The ${allreduce} row reduced ${ringSteps} steps on the ring`);
    }
    return {
      allreduce,
      workers,
      param_bytes: 4 * network.params.length,
      coordinator_bytes_per_step: Math.round(
        (after.read - before.read + after.written - before.written) / steps,
      ),
      step_ms: Math.round(median(times) * 10) / 10,
      worker_peak_rss_mb: peaks.length > 0 ? Math.round(Math.max(...peaks) * 10) / 10 : null,
    };
  } finally {
    await pool.close();
  }
}

/** Runs every row, printing each as a line of text, then its JSON line. */
export async function scaleRows(): Promise<ScaleRow[]> {
  const counts = (Deno.env.get("SHOAL_BENCH_SCALE_WORKERS") ?? "2,4,8,16").split(",").map(Number);
  const steps = Number(Deno.env.get("SHOAL_BENCH_SCALE_STEPS") ?? 5);
  const rows: ScaleRow[] = [];
  console.log(
    "\n== scale: the coordinator's traffic per step, star vs ring (8 MiB of parameters, TCP loopback) ==",
  );
  for (const workers of counts) {
    for (const allreduce of ["star", "ring"] as const) {
      const row = await measure(allreduce, workers, steps);
      rows.push(row);
      const ratio = row.coordinator_bytes_per_step / row.param_bytes;
      console.log(
        `${allreduce.padEnd(4)} x${String(workers).padEnd(2)}  ${
          (row.coordinator_bytes_per_step / 1e6).toFixed(1).padStart(6)
        } MB/step ` +
          `(${ratio.toFixed(2)} x the parameters)  ${row.step_ms.toFixed(0).padStart(6)} ms/step  ` +
          `worker peak RSS ${row.worker_peak_rss_mb?.toFixed(0) ?? "?"} MB`,
      );
      console.log(JSON.stringify(row));
    }
  }
  return rows;
}

if (import.meta.main) await scaleRows();
