/**
 * Where the milliseconds of one training step go: the Engine's trainSlice on the chapter MLP (or the
 * conv net) at one batch size: wall and CPU time per step (CPU above wall means helper threads work,
 * below it means the process waited for a core), and the tfjs kernels it runs grouped by name (count
 * and least time over several profiled steps).
 *
 * Run: `deno run -A tools/profile_step.ts [mlp|conv] [batch]`
 *
 * @module
 */
import process from "node:process";
import { loadDataset } from "../shared/io/datasets.ts";
import { Engine, initBackend, resolveMetric, tf } from "../shared/model/mod.ts";
import { fashionMnistModel } from "../coordinator/main.ts";
import { convNet } from "./conv_net.ts";

const kind = Deno.args[0] ?? "mlp";
const batch = Number(Deno.args[1] ?? 64);
const PROFILE_RUNS = 10;
const backend = await initBackend((Deno.env.get("SHOAL_BACKEND") ?? "auto") as "auto");
const ds = await loadDataset("fashion_mnist");
// The MLP scales the pixels itself (Rescaling), as `deno task train` does; the conv net takes them scaled.
const x = Float32Array.from(ds.xTrain.data.subarray(0, batch * 784), (v) => kind === "mlp" ? v : v / 255);
const y = Float32Array.from(ds.yTrain.subarray(0, batch));
const model = kind === "mlp" ? fashionMnistModel(1) : convNet(1);
const loss = "sparse_categorical_crossentropy" as const;
const engine = new Engine(model.network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 1 });
const b = {
  inputs: [{ data: x, shape: kind === "mlp" ? [batch, 784] : [batch, 28, 28, 1] }],
  y: { data: y, shape: [batch] },
};
const { params, state } = model.network;
for (let s = 0; s < 20; s++) engine.trainSlice(params, state, b, s, 0);
const times: number[] = [];
const cpu0 = process.cpuUsage();
for (let s = 0; s < 60; s++) {
  const t0 = performance.now();
  engine.trainSlice(params, state, b, s, 0);
  times.push(performance.now() - t0);
}
const cpu = process.cpuUsage(cpu0);
const wallMs = times.reduce((a, b) => a + b, 0);
times.sort((a, b) => a - b);
const median = times[times.length >> 1]!;
console.log(
  `${backend.name} ${kind} batch ${batch}: trainSlice median ${median.toFixed(2)} ms ` +
    `(${Math.round(batch / median * 1000)} samples/s), min ${times[0]!.toFixed(2)} ms; ` +
    `CPU ${((cpu.user + cpu.system) / 1000 / times.length).toFixed(2)} ms per step ` +
    `(${(cpu.system / 1000 / times.length).toFixed(2)} system) against ${
      (wallMs / times.length).toFixed(2)
    } ms wall`,
);
// Other processes on the machine stretch single runs: each kernel's time is its least over the runs.
const byName = new Map<string, { n: number; ms: number }>();
let calls = 0;
for (let run = 0; run < PROFILE_RUNS; run++) {
  const info = await tf.profile(() => {
    engine.trainSlice(params, state, b, 99, 0);
  });
  calls = info.kernels.length;
  const totals = new Map<string, { n: number; ms: number }>();
  for (const k of info.kernels) {
    const e = totals.get(k.name) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    totals.set(k.name, e);
  }
  for (const [name, e] of totals) {
    const best = byName.get(name);
    if (best === undefined || e.ms < best.ms) byName.set(name, e);
  }
}
const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms);
console.log(
  `${calls} kernel calls, ${rows.reduce((s, r) => s + r[1].ms, 0).toFixed(2)} ms in kernels ` +
    `(least of ${PROFILE_RUNS} runs per kernel)`,
);
for (const [name, e] of rows) console.log(`${name.padEnd(24)} ${String(e.n).padStart(4)} ${e.ms.toFixed(3)}`);
