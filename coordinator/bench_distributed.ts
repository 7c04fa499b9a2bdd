/**
 * Training-step throughput of a model in-process and with N local worker processes (bulk data over
 * the data plane, or through NATS): whole steps as the training loop runs them (the pool's trainStep,
 * the reduction and Adam's update), the distributed pool's own split (weights publish, round trip,
 * worker compute), and each worker's peak RSS. `tools/bench.ts` prints these rows next to PyTorch DDP,
 * whose steps include `opt.step()` too; this file also runs alone on the chapter MLP or the benchmark's
 * conv net:
 *
 * `deno run -A coordinator/bench_distributed.ts [--model mlp|conv] [--batch 64,256] [--workers 1,2] [--steps 30]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine, initBackend, type Network, optimizers, resolveMetric } from "../shared/model/mod.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { type Dataset, toDataset } from "./data.ts";
import { LocalPool } from "./local_pool.ts";
import { DistributedPool } from "./distributed/pool.ts";
import type { WorkerPool } from "./pool.ts";
import { reduceSlices } from "./reduce.ts";
import { adoptResidentBuffers, applyStep } from "./trainer.ts";
import { median } from "../shared/stats.ts";

/** One measured configuration. */
export interface DistributedRow {
  batch: number;
  /** `in-process`, `direct xN` or `nats xN`. */
  pool: string;
  workers: number;
  step_ms: number;
  reduce_ms: number;
  /** Adam's update of the reduced step, ms. */
  optimizer_ms: number;
  samples_per_s: number;
  /** CPU time of the coordinator per measured step, ms (it runs the in-process worker too). */
  coordinator_cpu_ms: number;
  /** CPU time of the embedded nats-server per step, ms; 0 without one. */
  server_cpu_ms: number;
  /** CPU time of each worker process per step, ms. */
  worker_cpu_ms: number[];
  /** Threads of each worker process at the end of the row. */
  worker_threads: number[];
  /** Peak resident memory of each worker process (the coordinator's for in-process), MiB. */
  worker_peak_rss_mib: number[];
  [phase: string]: unknown;
}

/** Steps run before the measured ones: the workers' JIT and the first exchanges warm up. */
const WARMUP_STEPS = 10;

/** Options of {@link distributedRows}. */
export interface DistributedOptions {
  batches: readonly number[];
  /** Worker counts of the distributed rows; the in-process row is always measured first. */
  workers: readonly number[];
  /** Transports of the distributed rows. @default ["direct"] */
  transports?: readonly ("direct" | "nats")[];
  /** Measured steps per row, after {@link WARMUP_STEPS} warm-up steps. */
  steps: number;
  encoding?: "f32" | "bf16";
}

/**
 * CPU time (user + system) a process has used so far, in ms, and its thread count; `null` when /proc
 * cannot be read. Linux reports the times in 1/100 s.
 */
export function cpuUsage(pid: number | "self"): { cpuMs: number; threads: number } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { cpuMs: ticks * 10, threads: Number(fields[17]) };
  } catch {
    return null;
  }
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

/** CPU ms per measured step of each process of `pids`, and its thread count at the end. */
function cpuPerStep(
  before: ({ cpuMs: number } | null)[],
  pids: (number | "self")[],
  steps: number,
): { cpu_ms_per_step: number; threads: number }[] {
  return pids.map((pid, i) => {
    const end = cpuUsage(pid), start = before[i];
    if (end === null || start == null) return { cpu_ms_per_step: -1, threads: -1 };
    return { cpu_ms_per_step: (end.cpuMs - start.cpuMs) / steps, threads: end.threads };
  });
}

async function measure(
  pool: WorkerPool,
  network: Network,
  ds: Dataset,
  batch: number,
  steps: number,
  pids: (number | "self")[],
) {
  await pool.setData("train", ds);
  // The whole step, as the training loop runs it: the update included, with its arrays resident.
  const target = { network, optimizer: new optimizers.Adam(), stopTraining: false };
  const resident = adoptResidentBuffers(target);
  const step: number[] = [], reduce: number[] = [], optimizer: number[] = [];
  let before: ({ cpuMs: number } | null)[] = [];
  for (let s = 0; s < steps + WARMUP_STEPS; s++) {
    if (s === WARMUP_STEPS) before = pids.map(cpuUsage);
    const indices = new Int32Array(batch).map((_, i) => (s * batch + i) % ds.length);
    const t0 = performance.now();
    const slices = await pool.trainStep("train", {
      step: s,
      indices,
      params: network.params,
      state: network.state,
      ...(resident ? { gradsInto: resident.grads } : {}),
    });
    const t1 = performance.now();
    const reduced = reduceSlices(slices, resident?.grads);
    const t2 = performance.now();
    applyStep(target, reduced);
    const t3 = performance.now();
    if (s >= WARMUP_STEPS) {
      step.push(t3 - t0);
      reduce.push(t2 - t1);
      optimizer.push(t3 - t2);
    }
  }
  const cpu = cpuPerStep(before, pids, steps);
  const stepMs = median(step);
  return {
    step_ms: stepMs,
    reduce_ms: median(reduce),
    optimizer_ms: median(optimizer),
    samples_per_s: Math.round(batch / (stepMs / 1000)),
    cpu,
  };
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
      const { cpu, ...r } = await measure(local, network, ds, batch, options.steps, ["self"]);
      rows.push({
        batch,
        pool: "in-process",
        workers: 0,
        ...r,
        coordinator_cpu_ms: cpu[0]!.cpu_ms_per_step,
        server_cpu_ms: 0,
        worker_cpu_ms: [],
        worker_threads: [],
        worker_peak_rss_mib: [peakRssMiB("self")],
      });
    } finally {
      await local.close();
    }
    for (
      const [transport, workers] of (options.transports ?? ["direct"]).flatMap((t) =>
        options.workers.map((w) => [t, w] as const)
      )
    ) {
      const pool = await DistributedPool.create(engine, {
        workers,
        backend: "auto",
        quiet: true,
        transport,
        gradEncoding: options.encoding ?? "f32",
      });
      try {
        const server = pool.serverPid;
        const pids: (number | "self")[] = [
          "self",
          ...(server === undefined ? [] : [server]),
          ...pool.localPids,
        ];
        const { cpu, ...r } = await measure(pool, network, ds, batch, options.steps, pids);
        const { steps: _steps, ...timings } = pool.timings() as unknown as Record<string, unknown>;
        const workerCpu = cpu.slice(server === undefined ? 1 : 2);
        rows.push({
          batch,
          pool: `${transport} x${workers}`,
          workers,
          ...r,
          ...timings,
          coordinator_cpu_ms: cpu[0]!.cpu_ms_per_step,
          server_cpu_ms: server === undefined ? 0 : cpu[1]!.cpu_ms_per_step,
          worker_cpu_ms: workerCpu.map((c) => c.cpu_ms_per_step),
          worker_threads: workerCpu.map((c) => c.threads),
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
      model: { type: "string", default: "mlp" },
      batch: { type: "string", default: "64,256" },
      workers: { type: "string", default: "1,2" },
      transports: { type: "string", default: "direct" },
      steps: { type: "string", default: "30" },
      encoding: { type: "string", default: "f32" },
    },
  });
  const { fashionMnistModel } = await import("./main.ts");
  const data = await loadDataset("fashion_mnist");
  const n = 4096;
  // The MLP takes the pixels as bytes and scales them itself (Rescaling); the conv net takes them scaled.
  const pixels = data.xTrain.data.subarray(0, n * 784);
  if (values.model !== "mlp" && values.model !== "conv") {
    throw new TypeError(
      `Cannot run the benchmark as --model must be mlp or conv: current value is ${values.model}`,
    );
  }
  const conv = values.model === "conv";
  const x = conv ? Float32Array.from(pixels, (v) => v / 255) : pixels;
  const ds = toDataset({ data: x, shape: conv ? [n, 28, 28, 1] : [n, 784] }, {
    data: Float32Array.from(data.yTrain.subarray(0, n)),
    shape: [n],
  });
  const model = conv ? (await import("../tools/conv_net.ts")).convNet(1) : fashionMnistModel(1);
  for (
    const row of await distributedRows(model.network, ds, {
      batches: values.batch.split(",").map(Number),
      workers: values.workers.split(",").map(Number),
      steps: Number(values.steps),
      transports: values.transports.split(",") as ("direct" | "nats")[],
      encoding: values.encoding === "bf16" ? "bf16" : "f32",
    })
  ) console.log(JSON.stringify(row));
}
