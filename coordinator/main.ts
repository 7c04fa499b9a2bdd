/**
 * `deno task train`: runs a training job from flags and/or a config file. With no arguments it trains
 * the Keras chapter's Fashion-MNIST classifier in-process and reports test accuracy.
 */
import { EarlyStopping, ReduceLROnPlateau, TensorBoard } from "../shared/callbacks/mod.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { plotHistory } from "../shared/io/plot/mod.ts";
import { initBackend, layers, optimizers } from "../shared/model/mod.ts";
import type { Callback } from "../shared/callbacks/mod.ts";
import type { ArrayData } from "./data.ts";
import { type Job, JobConfigError, parseJob, USAGE } from "./job.ts";
import { type DistributeOptions, Sequential } from "./model.ts";

/** The chapter's classifier: 512-256-128 with BatchNorm and Dropout, softmax over 10 classes. */
export function fashionMnistModel(seed: number): Sequential {
  return new Sequential([
    new layers.Dense(512, { activation: "relu", inputShape: [784] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(256, { activation: "relu" }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed });
}

function images(data: Uint8Array, n: number): ArrayData {
  const out = new Float32Array(n * 784);
  for (let i = 0; i < out.length; i++) out[i] = data[i]! / 255;
  return { data: out, shape: [n, 784] };
}

function labels(data: Uint8Array, n: number): ArrayData {
  return { data: Float32Array.from(data.subarray(0, n)), shape: [n] };
}

function distributeOptions(job: Job): DistributeOptions {
  return {
    workers: job.workers,
    ...(job.nats ? { nats: job.nats } : {}),
    ...(job.gpus ? { gpus: job.gpus } : {}),
    ...(job.minWorkers ? { minWorkers: job.minWorkers } : {}),
    joinTimeoutSeconds: job.joinTimeout,
    gradEncoding: job.gradEncoding,
  };
}

/** Runs a job and returns the summary it writes. */
export async function runJob(job: Job): Promise<Record<string, unknown>> {
  const backend = await initBackend(job.backend);
  console.log(`backend: ${backend.name} (${backend.reason})`);
  const ds = await loadDataset("fashion_mnist");
  const nTrain = Math.min(job.limitTrain ?? ds.yTrain.length, ds.yTrain.length);
  const xTrain = images(ds.xTrain.data, nTrain);
  const yTrain = labels(ds.yTrain, nTrain);
  const xTest = images(ds.xTest.data, ds.yTest.length);
  const yTest = labels(ds.yTest, ds.yTest.length);

  const model = fashionMnistModel(job.seed);
  if (job.verbose > 0) model.summary();
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: job.learningRate }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  const callbacks: Callback[] = [
    new EarlyStopping({ monitor: "val_loss", patience: job.patience, restoreBestWeights: true }),
    new ReduceLROnPlateau({ monitor: "val_loss", factor: 0.5, patience: 3, minLr: 1e-6, verbose: 1 }),
  ];
  if (job.logdir) callbacks.push(new TensorBoard({ logDir: job.logdir, histogramFreq: 1 }));
  const history = await model.fit(xTrain, yTrain, {
    epochs: job.epochs,
    batchSize: job.batchSize,
    validationSplit: job.validationSplit,
    callbacks,
    verbose: job.verbose,
    seed: job.seed,
    backend: job.backend,
    ...(job.workers > 0 ? { distribute: distributeOptions(job) } : {}),
  });
  const [testLoss, testAccuracy] = await model.evaluate(xTest, yTest, { verbose: 0 });
  console.log(`\nTest accuracy: ${testAccuracy!.toFixed(4)}`);
  console.log(`Test loss: ${testLoss!.toFixed(4)}`);
  const fit = model.lastFit!;
  const summary = {
    epochs_run: fit.epochsRun,
    history: history.history,
    test: { loss: testLoss, accuracy: testAccuracy },
    wall_s: Math.round(fit.wallSeconds * 10) / 10,
    train_samples_per_s: Math.round(fit.samplesProcessed / fit.wallSeconds),
    samples_processed: fit.samplesProcessed,
    workers: fit.workers,
    backend: fit.backend,
    params: model.countParams(),
    seed: job.seed,
    step_ms: fit.timings,
  };
  console.log(
    `Trained ${fit.epochsRun} epochs in ${summary.wall_s}s (${summary.train_samples_per_s} samples/s)`,
  );
  if (job.summary) {
    await Deno.writeTextFile(job.summary, JSON.stringify(summary, null, 2) + "\n");
    const plot = job.summary.replace(/(\.json)?$/, "").concat("_curves.png");
    await plotHistory(history, plot);
    console.log(`Summary written to ${job.summary}, learning curves to ${plot}`);
  }
  return summary;
}

if (import.meta.main) {
  let job;
  try {
    job = await parseJob(Deno.args);
  } catch (e) {
    if (e instanceof JobConfigError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
  if (job === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  try {
    await runJob(job);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
