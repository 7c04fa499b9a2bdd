/**
 * The `prefetch` part of `deno task bench`: one epoch of the Keras chapter's MLP (batch 64, in-process)
 * over Fashion-MNIST written as `.npz` shards (pixels as float32, 3 KB a row as float features would
 * be, uint8 labels, 10,000 rows a shard),
 * read each batch when it is needed (`prefetch(0)`) and read one batch ahead in the reader thread
 * (`prefetch(1)`), in alternating pairs, each run in a fresh process.
 *
 * With SHOAL_BENCH_COLD=1 (as root) the page cache is dropped before each run, so every row comes
 * from the disk; SHOAL_BENCH_DIR puts the shards in that folder (default the system temp folder,
 * which must not be a tmpfs for a cold read). Prints one JSON line per run and a summary line.
 *
 * Usage: deno run -A tools/bench_prefetch.ts [--rows N] [--pairs N]
 *        deno run -A tools/bench_prefetch.ts --run --shards 'DIR/train-*.npz' --prefetch 0|1
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { datasets, optimizers } from "../mod.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { encodeNpy } from "../shared/io/npy.ts";
import { fashionMnistModel } from "../coordinator/main.ts";
import { median } from "../shared/stats.ts";

const SHARD_ROWS = 10_000;

/** Writes the first `rows` training images (pixel values as float32) and labels as npz shards. */
async function writeShards(dir: string, rows: number): Promise<string> {
  const data = await loadDataset("fashion_mnist");
  for (let first = 0, s = 0; first < rows; first += SHARD_ROWS, s++) {
    const n = Math.min(SHARD_ROWS, rows - first);
    const x = new Float32Array(n * 784);
    x.set(data.xTrain.data.subarray(first * 784, (first + n) * 784));
    const y = data.yTrain.slice(first, first + n);
    const zip = zipSync({
      "x.npy": [encodeNpy({ data: x, shape: [n, 784] }), { level: 0 }],
      "y.npy": [encodeNpy({ data: y, shape: [n] }), { level: 0 }],
    });
    await Deno.writeFile(join(dir, `train-${String(s).padStart(3, "0")}.npz`), zip);
  }
  return join(dir, "train-*.npz");
}

/** Drops the page cache (root only): the next reads come from the disk. */
async function dropCaches(): Promise<void> {
  await new Deno.Command("sync").output();
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "1\n");
}

/** One epoch over the shards in this process; prints its JSON line. */
async function run(shards: string, prefetch: number): Promise<void> {
  const train = (await datasets.fromNpz(shards, { x: "x", y: "y" })).prefetch(prefetch);
  const model = fashionMnistModel(1);
  model.compile({
    optimizer: new optimizers.Adam(),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  await model.fit(train, { epochs: 1, batchSize: 64, verbose: 0 });
  const fit = model.lastFit!;
  console.log(JSON.stringify({
    prefetch,
    rows: train.length,
    wall_s: Math.round(fit.wallSeconds * 100) / 100,
    samples_per_s: Math.round(fit.samplesProcessed / fit.wallSeconds),
  }));
}

async function child(shards: string, prefetch: number, cold: boolean): Promise<number> {
  if (cold) await dropCaches();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--run",
      "--shards",
      shards,
      "--prefetch",
      `${prefetch}`,
    ],
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  console.log(line);
  return JSON.parse(line).samples_per_s;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      run: { type: "boolean" },
      shards: { type: "string" },
      prefetch: { type: "string", default: "1" },
      rows: { type: "string", default: Deno.env.get("SHOAL_BENCH_SHARD_ROWS") ?? "60000" },
      pairs: { type: "string", default: Deno.env.get("SHOAL_BENCH_PAIRS") ?? "3" },
    },
  });
  if (values.run) {
    await run(values.shards!, Number(values.prefetch));
    Deno.exit(0);
  }
  const cold = Deno.env.get("SHOAL_BENCH_COLD") === "1";
  const dir = await Deno.makeTempDir({ prefix: "shoal-bench-shards-", dir: Deno.env.get("SHOAL_BENCH_DIR") });
  try {
    const shards = await writeShards(dir, Number(values.rows));
    const without: number[] = [], withAhead: number[] = [];
    for (let pair = 0; pair < Number(values.pairs); pair++) {
      without.push(await child(shards, 0, cold));
      withAhead.push(await child(shards, 1, cold));
    }
    const ratios = withAhead.map((w, i) => Math.round((w / without[i]!) * 100) / 100);
    console.log(JSON.stringify({
      part: "prefetch",
      cache: cold ? "dropped before each run" : "warm",
      prefetch0_samples_per_s: without.join(" / "),
      prefetch1_samples_per_s: withAhead.join(" / "),
      ratio_per_pair: ratios.join(" / "),
      median_ratio: median(ratios),
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
