/**
 * `deno task bench`, in one run:
 * 1. In-process training throughput of the Keras chapter's MLP (batch 64, 128, 256) and a small conv
 *    net on Fashion-MNIST, with the median per-step breakdown, next to PyTorch on the same work
 *    (ratio = Shoal / PyTorch, measured back to back).
 * 2. Distributed rows: 1 in-process worker, 1 and 2 NATS workers (MLP at batch 64 and 256, conv at 64),
 *    with each worker's peak RSS, next to PyTorch DDP (gloo) with 1 and 2 processes, and the
 *    2-worker / 1-worker ratio of both.
 * 3. Raw loopback TCP against the NATS gradient exchange (`shared/io/nats/bench_exchange.ts`).
 *
 * PyTorch rows need /usr/bin/python3 with torch; they are left empty otherwise.
 * Environment: SHOAL_BENCH_SAMPLES (in-process samples per row, default 3200), SHOAL_BENCH_STEPS
 * (steps per distributed row, default 20), SHOAL_BACKEND (default auto), SHOAL_BENCH_MODELS (models
 * measured, default `mlp,conv`), SHOAL_BENCH_PARTS (parts run, default `local,distributed,exchange`).
 *
 * @module
 */
import { loadDataset } from "../shared/io/datasets.ts";
import { initBackend, optimizers } from "../shared/model/mod.ts";
import { fashionMnistModel } from "../coordinator/main.ts";
import { toDataset } from "../coordinator/data.ts";
import { distributedRows, peakRssMiB } from "../coordinator/bench_distributed.ts";
import { convNet } from "./conv_net.ts";

const SAMPLES = Number(Deno.env.get("SHOAL_BENCH_SAMPLES") ?? 3200);
const STEPS = Number(Deno.env.get("SHOAL_BENCH_STEPS") ?? 20);
const MODELS = new Set((Deno.env.get("SHOAL_BENCH_MODELS") ?? "mlp,conv").split(","));
const PARTS = new Set((Deno.env.get("SHOAL_BENCH_PARTS") ?? "local,distributed,exchange").split(","));

/** The environment for python: OpenBLAS core-type and cache overrides meant for Deno's OpenBLAS removed. */
function pythonEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

async function python(script: string, args: string[]): Promise<number | null> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [new URL(script, import.meta.url).pathname, ...args],
      env: pythonEnv(),
      clearEnv: true,
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    return JSON.parse(lines[lines.length - 1]!).samples_per_s;
  } catch {
    return null;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const phase = (ms: unknown) => (typeof ms === "number" ? round2(ms) : null);
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? round2(a / b) : null);

async function inProcessRows(x: Float32Array, y: Float32Array): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const [kind, batch] of [["mlp", 64], ["mlp", 128], ["mlp", 256], ["conv", 64]] as const) {
    if (!MODELS.has(kind)) continue;
    const model = kind === "mlp" ? fashionMnistModel(1) : convNet(1);
    model.compile({
      optimizer: new optimizers.Adam(),
      loss: "sparse_categorical_crossentropy",
      metrics: ["accuracy"],
    });
    const xs = { data: x, shape: kind === "mlp" ? [SAMPLES, 784] : [SAMPLES, 28, 28, 1] };
    const ys = { data: y, shape: [SAMPLES] };
    await model.fit(xs, ys, { epochs: 1, batchSize: batch, verbose: 0, shuffle: false });
    await model.fit(xs, ys, { epochs: 1, batchSize: batch, verbose: 0, shuffle: false });
    const fit = model.lastFit!;
    const shoal = Math.round(fit.samplesProcessed / fit.wallSeconds);
    const torch = await python("./torch_reference.py", [kind, String(batch), String(SAMPLES)]);
    const t = fit.timings as unknown as Record<string, number>;
    const row = {
      model: kind,
      batch,
      shoal_samples_per_s: shoal,
      pytorch_samples_per_s: torch,
      ratio: ratio(shoal, torch),
      compute_ms: round2(t.compute_ms ?? 0),
      optimizer_ms: round2(t.optimizer_ms ?? 0),
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  return rows;
}

async function distributedTable(x: Float32Array, y: Float32Array): Promise<Record<string, unknown>[]> {
  const n = Math.min(SAMPLES, 4096);
  const out: Record<string, unknown>[] = [];
  for (const [kind, batches] of [["mlp", [64, 256]], ["conv", [64]]] as const) {
    if (!MODELS.has(kind)) continue;
    const model = kind === "mlp" ? fashionMnistModel(1) : convNet(1);
    const shape = kind === "mlp" ? [n, 784] : [n, 28, 28, 1];
    const ds = toDataset({ data: x.subarray(0, n * 784), shape }, { data: y.subarray(0, n), shape: [n] });
    const rows = await distributedRows(model.network, ds, { batches, workers: [1, 2], steps: STEPS });
    for (const batch of batches) {
      const ddpSamples = String(Math.max(batch * 40, 2560));
      const ddp1 = await python("./torch_ddp_reference.py", [
        kind,
        "1",
        String(batch),
        ddpSamples,
        String(freePort()),
      ]);
      const ddp2 = await python("./torch_ddp_reference.py", [
        kind,
        "2",
        String(batch),
        ddpSamples,
        String(freePort()),
      ]);
      const mine = rows.filter((r) => r.batch === batch);
      const nats1 = mine.find((r) => r.pool === "nats x1")?.samples_per_s;
      const nats2 = mine.find((r) => r.pool === "nats x2")?.samples_per_s;
      for (const r of mine) {
        const row = {
          model: kind,
          batch,
          pool: r.pool,
          samples_per_s: r.samples_per_s,
          step_ms: round2(r.step_ms),
          publish_ms: phase(r.publish_ms),
          round_ms: phase(r.round_ms),
          compute_ms: phase(r.compute_ms),
          transfer_ms: phase(r.transfer_ms),
          reduce_ms: round2(r.reduce_ms),
          cpu_ms_coord_server_workers: [r.coordinator_cpu_ms, r.server_cpu_ms, ...r.worker_cpu_ms]
            .map((ms) => Math.round(ms)).join("/"),
          worker_peak_rss_mib: r.worker_peak_rss_mib.join("/"),
          ddp_samples_per_s: r.workers === 1 ? ddp1 : r.workers === 2 ? ddp2 : null,
          x2_over_x1: r.workers === 2 ? ratio(nats2, nats1) : null,
          ddp_x2_over_x1: r.workers === 2 ? ratio(ddp2, ddp1) : null,
        };
        out.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
  return out;
}

async function exchangeLines(): Promise<string[]> {
  const script = new URL("../shared/io/nats/bench_exchange.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--rounds", "20"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

if (import.meta.main) {
  const started = performance.now();
  const backend = await initBackend((Deno.env.get("SHOAL_BACKEND") ?? "auto") as "auto");
  console.log(
    `backend: ${backend.name}; ${SAMPLES} samples per in-process row, ${STEPS} steps per distributed row`,
  );
  const data = await loadDataset("fashion_mnist");
  const x = new Float32Array(SAMPLES * 784);
  for (let i = 0; i < x.length; i++) x[i] = data.xTrain.data[i]! / 255;
  const y = Float32Array.from(data.yTrain.subarray(0, SAMPLES));
  const local = PARTS.has("local") ? await inProcessRows(x, y) : [];
  const distributed = PARTS.has("distributed") ? await distributedTable(x, y) : [];
  const exchange = PARTS.has("exchange") ? await exchangeLines() : [];
  console.log("\nIn-process training (ratio = Shoal / PyTorch, one thread each, same run):");
  console.table(local);
  console.log("Distributed (Shoal NATS workers vs PyTorch DDP gloo; x2_over_x1 = 2-worker / 1-worker rate):");
  console.table(distributed);
  console.log("Gradient exchange vs raw loopback TCP:");
  for (const line of exchange) console.log(`  ${line}`);
  console.log(
    `coordinator peak RSS: ${peakRssMiB("self")} MiB; bench wall time ${
      Math.round((performance.now() - started) / 1000)
    } s`,
  );
}
