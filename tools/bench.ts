/**
 * `deno task bench`: training throughput of the Keras chapter's MLP (batch 64, 128, 256) and a small
 * conv net on Fashion-MNIST, with the median per-step breakdown and peak RSS, next to PyTorch on the
 * same work when /usr/bin/python3 has torch (ratio = Shoal / PyTorch, measured in this run).
 */
import { loadDataset } from "../shared/io/datasets.ts";
import { initBackend, layers, optimizers } from "../shared/model/mod.ts";
import { fashionMnistModel } from "../coordinator/main.ts";
import { Sequential } from "../coordinator/model.ts";

const SAMPLES = Number(Deno.env.get("SHOAL_BENCH_SAMPLES") ?? 6400);

function convNet(seed: number): Sequential {
  return new Sequential([
    new layers.Conv2D(32, 3, { activation: "relu", inputShape: [28, 28, 1] }),
    new layers.MaxPooling2D(),
    new layers.Conv2D(64, 3, { activation: "relu" }),
    new layers.MaxPooling2D(),
    new layers.Flatten(),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed });
}

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function torchRate(kind: string, batch: number): Promise<number | null> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [new URL("./torch_reference.py", import.meta.url).pathname, kind, String(batch), String(SAMPLES)],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    return JSON.parse(new TextDecoder().decode(out.stdout)).samples_per_s;
  } catch {
    return null;
  }
}

const backend = await initBackend((Deno.env.get("SHOAL_BACKEND") ?? "auto") as "auto");
console.log(`backend: ${backend.name}; ${SAMPLES} samples per row; one warm-up pass first`);
const ds = await loadDataset("fashion_mnist");
const x = new Float32Array(SAMPLES * 784);
for (let i = 0; i < x.length; i++) x[i] = ds.xTrain.data[i]! / 255;
const y = Float32Array.from(ds.yTrain.subarray(0, SAMPLES));

const rows: Record<string, unknown>[] = [];
for (const [kind, batch] of [["mlp", 64], ["mlp", 128], ["mlp", 256], ["conv", 64]] as const) {
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
  const torch = await torchRate(kind, batch);
  const row = {
    model: kind,
    batch,
    shoal_samples_per_s: shoal,
    pytorch_samples_per_s: torch,
    ratio: torch ? Math.round((shoal / torch) * 100) / 100 : null,
    ...fit.timings,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.table(rows);
console.log(`peak RSS: ${peakRssMiB()} MiB`);
