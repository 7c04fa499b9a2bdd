/**
 * `deno task bench`, in one run, every comparison in alternating pairs (A, B, A, B, A, B): these VMs are
 * noisy (one pair can be off by 3×), so each pair's ratio and the median of the ratios are printed,
 * with the pair that strayed furthest from the median named.
 *
 * 1. `local`: in-process training throughput of the Keras chapter's MLP (batch 64, 128, 256) and a
 *    small conv net (batch 64) on Fashion-MNIST against PyTorch on the same work, one thread each.
 * 2. `distributed`: Shoal in-process and with 2 workers (data plane) against PyTorch DDP (gloo) with 1
 *    and 2 processes, for the MLP at batch 64 and 256 and the conv net at batch 64: the scaling of each
 *    (2 ÷ 1) per round, and Shoal 2 workers ÷ DDP 2 processes. One extra row shows 2 workers on NATS.
 * 3. `exchange`: the step's weights/gradient exchange on each transport against raw loopback TCP
 *    (tools/bench_exchange.ts, in a process of its own); its JSON result is the last line printed.
 * 4. `text` (only when named in SHOAL_BENCH_PARTS): in-process training throughput of the two text
 *    examples' models, the bidirectional LSTM classifier and the transformer encoder (batch 64, the
 *    synthetic reviews), against the same models in PyTorch (tools/torch_text_reference.py).
 * 5. `prefetch` (only when named in SHOAL_BENCH_PARTS): one epoch over Fashion-MNIST written as npz
 *    shards, each batch read when needed (`prefetch(0)`) against read one batch ahead (`prefetch(1)`),
 *    in fresh processes (tools/bench_prefetch.ts; SHOAL_BENCH_COLD=1 drops the page cache before each
 *    run, as root).
 * 6. `scale` (only when named in SHOAL_BENCH_PARTS: it starts 60 workers): the coordinator's bytes per step with
 *    the star and the ring reduction for 2, 4, 8 and 16 workers (tools/bench_scale.ts), one JSON line
 *    per row.
 *
 * PyTorch rows need /usr/bin/python3 with torch (Debian python3-torch); they are left empty otherwise.
 * Environment: SHOAL_BENCH_SAMPLES (in-process samples per run, default 3200), SHOAL_BENCH_STEPS (steps
 * per distributed run, default 40), SHOAL_BENCH_PAIRS (pairs per comparison, default 3), SHOAL_BACKEND
 * (default auto), SHOAL_BENCH_MODELS (default `mlp,conv`), SHOAL_BENCH_PARTS (default
 * `local,distributed,exchange`; add `text` for part 4, `prefetch` for part 5), SHOAL_BENCH_TEXT_SAMPLES
 * (rows per text run, default 1280), SHOAL_BENCH_SHARD_ROWS (rows of the prefetch part, default 60000).
 *
 * @module
 */
import { loadDataset } from "../shared/io/datasets.ts";
import { initBackend, optimizers, tf } from "../shared/model/mod.ts";
import { textClassifier } from "../examples/text_classifier.ts";
import { positionsFor, transformerEncoder } from "../examples/transformer_encoder.ts";
import { MAX_LEN, reviews, VOCABULARY } from "../examples/text_data.ts";
import { fashionMnistModel } from "../coordinator/main.ts";
import { type DistributedRow, peakRssMiB } from "../coordinator/bench_distributed.ts";
import { convNet } from "./conv_net.ts";
import { median } from "../shared/stats.ts";
import { scaleRows } from "./bench_scale.ts";

const SAMPLES = Number(Deno.env.get("SHOAL_BENCH_SAMPLES") ?? 3200);
const STEPS = Number(Deno.env.get("SHOAL_BENCH_STEPS") ?? 40);
const PAIRS = Number(Deno.env.get("SHOAL_BENCH_PAIRS") ?? 3);
const MODELS = new Set((Deno.env.get("SHOAL_BENCH_MODELS") ?? "mlp,conv").split(","));
const PARTS = new Set((Deno.env.get("SHOAL_BENCH_PARTS") ?? "local,distributed,exchange").split(","));
const TEXT_SAMPLES = Number(Deno.env.get("SHOAL_BENCH_TEXT_SAMPLES") ?? 1280);

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
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? round2(a / b) : null);

/** The pairs' ratios, their median, and which pair strayed furthest from it. */
function summarize(ratios: (number | null)[]): { pairs: string; median: number | null; outlier: string } {
  const known = ratios.filter((r): r is number => r !== null);
  const m = known.length ? round2(median(known)) : null;
  let outlier = "";
  if (m !== null && known.length > 1) {
    const k = ratios.reduce<number>(
      (best, r, i) => (r !== null && Math.abs(r - m) > Math.abs((ratios[best] ?? m) - m) ? i : best),
      0,
    );
    outlier = `pair ${k + 1} (${ratios[k]})`;
  }
  return { pairs: ratios.map((r) => r ?? "-").join(" / "), median: m, outlier };
}

/** One epoch of `samples` rows in-process (after a warm-up epoch): samples per second. */
async function shoalInProcess(
  kind: "mlp" | "conv",
  batch: number,
  x: Float32Array | Uint8Array,
  y: Float32Array,
) {
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
  const t = fit.timings as unknown as Record<string, number>;
  return {
    samples_per_s: Math.round(fit.samplesProcessed / fit.wallSeconds),
    compute_ms: t.compute_ms ?? 0,
    optimizer_ms: t.optimizer_ms ?? 0,
  };
}

async function inProcessRows(
  pixels: Uint8Array,
  x: Float32Array,
  y: Float32Array,
): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const [kind, batch] of [["mlp", 64], ["mlp", 128], ["mlp", 256], ["conv", 64]] as const) {
    if (!MODELS.has(kind)) continue;
    let phases = { compute_ms: 0, optimizer_ms: 0 };
    const row = await pairedRow(
      kind,
      batch,
      async () => (phases = await shoalInProcess(kind, batch, kind === "mlp" ? pixels : x, y)).samples_per_s,
      () => python("./torch_reference.py", [kind, String(batch), String(SAMPLES)]),
    );
    rows.push({ ...row, compute_ms: round2(phases.compute_ms), optimizer_ms: round2(phases.optimizer_ms) });
    console.log(JSON.stringify(rows.at(-1)));
  }
  return rows;
}

/** `PAIRS` alternating runs of Shoal then PyTorch, as one row: every pair's ratio, the median, the outlier. */
async function pairedRow(
  model: string,
  batch: number,
  shoalRun: () => Promise<number>,
  torchRun: () => Promise<number | null>,
): Promise<Record<string, unknown>> {
  const shoal: number[] = [], torch: (number | null)[] = [], ratios: (number | null)[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    const s = await shoalRun();
    const t = await torchRun();
    shoal.push(s);
    torch.push(t);
    ratios.push(ratio(s, t));
  }
  const summary = summarize(ratios);
  return {
    model,
    batch,
    shoal_samples_per_s: shoal.join(" / "),
    pytorch_samples_per_s: torch.map((t) => t ?? "-").join(" / "),
    ratio_per_pair: summary.pairs,
    median_ratio: summary.median,
    outlier: summary.outlier,
  };
}

/**
 * One epoch of `TEXT_SAMPLES` synthetic reviews through a text example's model in-process, after a
 * warm-up of five batches (as the PyTorch script): samples per second.
 */
async function shoalText(kind: "bilstm" | "transformer", batch: number): Promise<number> {
  const { x, y } = reviews(TEXT_SAMPLES, 1);
  const model = kind === "bilstm" ? textClassifier(1) : transformerEncoder(1);
  model.compile(
    kind === "bilstm"
      ? { optimizer: new optimizers.Adam({ learningRate: 0.01 }), loss: "binary_crossentropy" }
      : { optimizer: "adam", loss: "sparse_categorical_crossentropy" },
  );
  const inputs = (rows: tf.Tensor2D) =>
    kind === "bilstm" ? rows : { tokens: rows, positions: positionsFor(rows.shape[0]) };
  const warm = Math.min(TEXT_SAMPLES, 5 * batch);
  const fit = { epochs: 1, batchSize: batch, verbose: 0 as const, shuffle: false };
  await model.fit(inputs(x.slice(0, warm)), y.slice(0, warm), fit);
  await model.fit(inputs(x), y, fit);
  tf.dispose([x, y]);
  return Math.round(model.lastFit!.samplesProcessed / model.lastFit!.wallSeconds);
}

async function textRows(): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const batch = 64;
  for (const kind of ["bilstm", "transformer"] as const) {
    const row = await pairedRow(
      kind,
      batch,
      () => shoalText(kind, batch),
      () =>
        python("./torch_text_reference.py", [
          kind,
          String(batch),
          String(TEXT_SAMPLES),
          String(VOCABULARY.length),
          String(MAX_LEN),
        ]),
    );
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  return rows;
}

/**
 * Shoal's distributed rows in a fresh process (coordinator/bench_distributed.ts), as a user's run
 * would be: this process's heap, grown by the other rows, would add its collections to the steps.
 */
async function shoalRows(kind: string, batch: number, transport: string): Promise<DistributedRow[]> {
  const script = new URL("../coordinator/bench_distributed.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    script,
    "--model",
    kind,
    "--batch",
    String(batch),
    "--workers",
    "2",
    "--steps",
    String(STEPS),
    "--transports",
    transport,
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l)
  );
}

async function distributedTable(): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const [kind, batch] of [["mlp", 64], ["mlp", 256], ["conv", 64]] as const) {
    if (!MODELS.has(kind)) continue;
    const ddpSamples = String(Math.max(batch * 40, 2560));
    const shoalScaling: (number | null)[] = [],
      ddpScaling: (number | null)[] = [],
      vsDdp: (number | null)[] = [];
    const details: string[] = [];
    for (let round = 0; round < PAIRS; round++) {
      const rows = await shoalRows(kind, batch, "direct");
      const local = rows.find((r) => r.pool === "in-process")!;
      const two = rows.find((r) => r.pool === "direct x2")!;
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
      shoalScaling.push(ratio(two.samples_per_s, local.samples_per_s));
      ddpScaling.push(ratio(ddp2, ddp1));
      vsDdp.push(ratio(two.samples_per_s, ddp2));
      details.push(
        `${local.samples_per_s}→${two.samples_per_s} (round ${round2(two.round_ms as number)} ms, compute ` +
          `${round2(two.compute_ms as number)}, transfer ${round2(two.transfer_ms as number)}, reduce ` +
          `${round2(two.reduce_ms)}, Adam ${round2(two.optimizer_ms)}); DDP ${ddp1 ?? "-"}→${ddp2 ?? "-"}`,
      );
    }
    const viaNats = await shoalRows(kind, batch, "nats");
    const natsTwo = viaNats.find((r) => r.pool === "nats x2")!;
    const natsLocal = viaNats.find((r) => r.pool === "in-process")!;
    const s = summarize(shoalScaling), d = summarize(ddpScaling), v = summarize(vsDdp);
    const row = {
      model: kind,
      batch,
      shoal_2w_over_1_per_round: s.pairs,
      shoal_median: s.median,
      ddp_2_over_1_per_round: d.pairs,
      ddp_median: d.median,
      shoal_scales_at_least_ddp: s.median !== null && d.median !== null ? s.median >= d.median : null,
      shoal_2w_over_ddp_2_median: v.median,
      nats_2w_over_in_process: ratio(natsTwo.samples_per_s, natsLocal.samples_per_s),
      samples_per_s_per_round: details.join(" | "),
    };
    out.push(row);
    console.log(JSON.stringify(row));
  }
  return out;
}

if (import.meta.main) {
  const started = performance.now();
  const backend = await initBackend((Deno.env.get("SHOAL_BACKEND") ?? "auto") as "auto");
  console.log(
    `backend: ${backend.name}; ${SAMPLES} samples per in-process run, ${STEPS} steps per distributed run, ` +
      `${PAIRS} alternating pairs per comparison`,
  );
  const data = await loadDataset("fashion_mnist");
  // The MLP takes the pixels as bytes and scales them itself (Rescaling), as `deno task train` does;
  // the conv net takes them scaled.
  const pixels = data.xTrain.data.subarray(0, SAMPLES * 784);
  const x = Float32Array.from(pixels, (v) => v / 255);
  const y = Float32Array.from(data.yTrain.subarray(0, SAMPLES));
  const local = PARTS.has("local") ? await inProcessRows(pixels, x, y) : [];
  const distributed = PARTS.has("distributed") ? await distributedTable() : [];
  const text = PARTS.has("text") ? await textRows() : [];
  if (local.length) {
    console.log("\nIn-process training, Shoal / PyTorch (one thread each), alternating pairs:");
    console.table(local);
  }
  if (distributed.length) {
    console.log(
      "Scaling to 2 workers: Shoal (2 workers ÷ in-process) vs PyTorch DDP (2 processes ÷ 1), per round:",
    );
    console.table(distributed);
  }
  if (text.length) {
    console.log("Text examples in-process, Shoal / PyTorch (one thread each), alternating pairs:");
    console.table(text);
  }
  // In fresh processes, one per epoch: each run's reads and heap are its own.
  if (PARTS.has("prefetch")) {
    const script = new URL("./bench_prefetch.ts", import.meta.url).pathname;
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--pairs", String(PAIRS)],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  }
  if (PARTS.has("scale")) await scaleRows();
  console.log(
    `coordinator peak RSS: ${peakRssMiB("self")} MiB; bench wall time ${
      Math.round((performance.now() - started) / 1000)
    } s`,
  );
  if (PARTS.has("exchange")) {
    // In a fresh process: this one's heap, grown by the parts above, would add its collections to the rounds.
    const script = new URL("./bench_exchange.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, "--rounds", "40"] })
      .output();
    await Deno.stdout.write(out.stdout);
  }
  Deno.exit(0);
}
