/**
 * `deno task train`: runs a training job from flags and/or a config file. With no arguments it trains
 * the Keras chapter's Fashion-MNIST classifier in-process and reports test accuracy.
 *
 * With `--checkpoint-dir DIR` the job keeps a `BackupAndRestore` backup in `DIR/backup` (every
 * {@link BACKUP_EVERY_STEPS} steps and at each epoch end), the best model by `val_loss` in
 * `DIR/best.keras`, and writes the final weights to `DIR/final.weights.h5`. As Keras's
 * `BackupAndRestore` does, a job that finds a backup resumes from it; `--resume` makes that explicit
 * and fails when there is none. SIGTERM or SIGINT stop training at the next step boundary, write the
 * backup and exit 143 or 130 (128 plus the signal's number, so Kubernetes does not count a drained pod
 * as a completion); a second signal exits at once with the same code. Every exit code is in
 * exit_codes.ts.
 */
import { dirname, join } from "node:path";
import {
  BackupAndRestore,
  EarlyStopping,
  ModelCheckpoint,
  readBackup,
  ReduceLROnPlateau,
  TensorBoard,
} from "../shared/callbacks/mod.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { plotHistory } from "../shared/io/plot/mod.ts";
import { initBackend, layers, optimizers } from "../shared/model/mod.ts";
import type { Callback } from "../shared/callbacks/mod.ts";
import type { ArrayData } from "./data.ts";
import { type Dataset as RowDataset, fromNpz } from "../shared/io/dataset/mod.ts";
import { DatasetError } from "../shared/io/dataset_error.ts";
import type { History } from "../shared/callbacks/mod.ts";
import { NotEnoughWorkersError, StoppedWaitingError } from "./distributed/pool.ts";
import { EXIT_BAD_INPUT, exitCodeFor, signalExitCode } from "./exit_codes.ts";
import { natsAuthFromEnvAndFlags } from "../shared/io/nats/mod.ts";
import { type Job, JobConfigError, parseJob, USAGE } from "./job.ts";
import { type DistributeOptions, type FitOptions, Sequential } from "./model.ts";
import { TrainingInterruptedError } from "./trainer.ts";

/** The share of the built-in training data the chapter holds out for validation. */
export const DEFAULT_VALIDATION_SPLIT = 0.15;

/** Steps between two backups of a `--checkpoint-dir` job (besides one at each epoch end). */
export const BACKUP_EVERY_STEPS = 50;

/** The paths a `--checkpoint-dir` job writes. */
export function checkpointPaths(dir: string): { backup: string; best: string; final: string } {
  return {
    backup: join(dir, "backup"),
    best: join(dir, "best.keras"),
    final: join(dir, "final.weights.h5"),
  };
}

/**
 * Checks `--resume` against the backup there is; returns a line to print when the job will resume.
 * Throws a {@link JobConfigError} for `--resume` with no `--checkpoint-dir` or no backup.
 */
export async function resumeNotice(job: Job): Promise<string | null> {
  if (!job.checkpointDir) {
    if (job.resume) {
      throw new JobConfigError("--resume needs --checkpoint-dir DIR: the directory the interrupted job used");
    }
    return null;
  }
  const dir = checkpointPaths(job.checkpointDir).backup;
  const backup = await readBackup(dir);
  if (backup === null) {
    if (job.resume) {
      throw new JobConfigError(
        `Cannot resume as there is no backup in ${dir}. Run the job without --resume to start it, ` +
          "or pass the --checkpoint-dir the interrupted job used",
      );
    }
    return null;
  }
  const p = backup.position;
  return `Resuming from the backup in ${dir}: epoch ${p.epoch + 1}, batch ${p.batch} done, ` +
    `step ${backup.optimizer.iterations}${job.resume ? "" : " (delete it to start over)"}`;
}

/**
 * The chapter's classifier: 512-256-128 with BatchNorm and Dropout, softmax over 10 classes. It takes
 * the pixels as bytes and scales them itself (`Rescaling(1 / 255)`), so the training set stays in
 * memory as the 47 MB the file holds, not as a 188 MB float copy. Rows of another shape than `[784]`
 * (images `[28, 28]` in shards) are flattened after scaling.
 */
export function fashionMnistModel(seed: number, inputShape: number[] = [784]): Sequential {
  return new Sequential([
    new layers.Rescaling(1 / 255, { inputShape }),
    ...(inputShape.length === 1 ? [] : [new layers.Flatten()]),
    new layers.Dense(512, { activation: "relu" }),
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

/** The first `n` images as rows of 784 bytes (a view of the file's pixels). */
function images(data: Uint8Array, n: number): ArrayData {
  return { data: data.subarray(0, n * 784), shape: [n, 784] };
}

function labels(data: Uint8Array, n: number): ArrayData {
  return { data: Float32Array.from(data.subarray(0, n)), shape: [n] };
}

/** The job's data: the model's input shape, how to fit on it, and its test evaluation. */
interface JobData {
  inputShape: number[];
  /** Whether the fit evaluates validation data at each epoch's end (callbacks monitor val_loss). */
  validated: boolean;
  fit(model: Sequential, opts: FitOptions): Promise<History>;
  /** The test loss and accuracy, or null without test data. */
  test(model: Sequential): Promise<{ loss: number; accuracy: number } | null>;
}

/** The built-in Fashion-MNIST: the chapter's validation split and test set, in memory. */
async function builtinData(job: Job): Promise<JobData> {
  const ds = await loadDataset("fashion_mnist");
  const nTrain = Math.min(job.limitTrain ?? ds.yTrain.length, ds.yTrain.length);
  const xTrain = images(ds.xTrain.data, nTrain);
  const yTrain = labels(ds.yTrain, nTrain);
  return {
    inputShape: [784],
    validated: true,
    fit: (model, opts) =>
      model.fit(xTrain, yTrain, {
        ...opts,
        validationSplit: job.validationSplit ?? DEFAULT_VALIDATION_SPLIT,
      }),
    test: async (model) => {
      const x = images(ds.xTest.data, ds.yTest.length);
      const [loss, accuracy] = await model.evaluate(x, labels(ds.yTest, ds.yTest.length), { verbose: 0 });
      return { loss: loss!, accuracy: accuracy! };
    },
  };
}

/**
 * Opens `pattern`'s shards with the job's keys; prints what it found. Throws a {@link DatasetError}
 * (exit 2) for an empty glob, a missing key, a truncated shard or shards that differ.
 */
async function openShards(job: Job, flag: string, pattern: string): Promise<RowDataset> {
  let ds: RowDataset;
  try {
    ds = (await fromNpz(pattern, { x: job.xKey, y: job.yKey })).prefetch(job.prefetch);
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    const keys = /no such array/.test(e.message) ? " Name the arrays with --x-key and --y-key." : "";
    throw new DatasetError(e.file, `${e.message} (${flag} ${pattern})${keys}`, { cause: e });
  }
  const { inputs, y } = ds.element;
  if (y === null || y.length !== 0) {
    throw new DatasetError(
      pattern,
      `Cannot train the classifier on ${pattern} (${flag}) as "${job.yKey}" must hold one class id per ` +
        `row (shape [n]): its rows have shape [${y}]. Save the labels as integers 0-9, not one-hot, ` +
        "or name the labels' array with --y-key",
    );
  }
  console.log(
    `${flag} ${pattern}: ${ds.length} rows in ${ds.shardRows.length} shard${
      ds.shardRows.length === 1 ? "" : "s"
    }, "${job.xKey}" rows of [${inputs[0]}], "${job.yKey}" class ids`,
  );
  return ds;
}

/** Shards named by --train-data, --validation-data and --test-data, read where they lie. */
async function fileData(job: Job): Promise<JobData> {
  const train = await openShards(job, "--train-data", job.trainData!);
  const inputShape = train.element.inputs[0]!;
  const other = async (flag: string, pattern: string | undefined) => {
    if (pattern === undefined) return null;
    const ds = await openShards(job, flag, pattern);
    if (JSON.stringify(ds.element) !== JSON.stringify(train.element)) {
      throw new DatasetError(
        pattern,
        `Cannot use ${pattern} (${flag}) with ${job.trainData} as its "${job.xKey}" rows have shape ` +
          `[${ds.element.inputs[0]}] where the training shards' have [${inputShape}]. Write every split ` +
          "with the same row shape.",
      );
    }
    return ds;
  };
  const validation = await other("--validation-data", job.validationData);
  const test = await other("--test-data", job.testData);
  return {
    inputShape,
    validated: validation !== null,
    fit: (model, opts) =>
      model.fit(train, { ...opts, ...(validation ? { validationData: validation } : {}) }),
    test: async (model) => {
      if (!test) return null;
      const [loss, accuracy] = await model.evaluate(test, { verbose: 0 });
      return { loss: loss!, accuracy: accuracy! };
    },
  };
}

/** The data plane's TLS files: the flags, else SHOAL_DATA_TLS_CERT and SHOAL_DATA_TLS_KEY (Kubernetes Secrets). */
function dataTls(job: Job): Pick<DistributeOptions, "dataTls"> {
  const certFile = job.dataTlsCert ?? Deno.env.get("SHOAL_DATA_TLS_CERT");
  const keyFile = job.dataTlsKey ?? Deno.env.get("SHOAL_DATA_TLS_KEY");
  if (certFile === undefined && keyFile === undefined) return {};
  if (certFile === undefined || keyFile === undefined) {
    throw new JobConfigError(
      "Cannot run the job as the data plane's TLS needs a certificate and a key: set both " +
        "--data-tls-cert/--data-tls-key (or SHOAL_DATA_TLS_CERT and SHOAL_DATA_TLS_KEY)",
    );
  }
  return { dataTls: { certFile, keyFile } };
}

function distributeOptions(job: Job): DistributeOptions {
  const auth = natsAuthFromEnvAndFlags(job.natsAuth ?? {}, Deno.env.toObject());
  return {
    workers: job.workers,
    ...(job.nats ? { nats: job.nats } : {}),
    ...(job.gpus ? { gpus: job.gpus } : {}),
    ...(job.jobId ? { job: job.jobId } : {}),
    ...(job.minWorkers ? { minWorkers: job.minWorkers } : {}),
    joinTimeoutSeconds: job.joinTimeout,
    gradEncoding: job.gradEncoding,
    transport: job.transport,
    allreduce: job.allreduce,
    ...(job.dataListen ? { dataListen: job.dataListen } : {}),
    ...(job.dataAdvertise ? { dataAdvertise: job.dataAdvertise } : {}),
    dataUnix: job.dataUnix,
    ...dataTls(job),
    ...(auth ? { auth } : {}),
  };
}

/** Runs a job and returns the summary it writes. */
export async function runJob(job: Job, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const notice = await resumeNotice(job);
  if (notice) console.log(notice);
  const data = job.trainData ? await fileData(job) : await builtinData(job);
  const backend = await initBackend(job.backend);
  console.log(`backend: ${backend.name} (${backend.reason})`);

  const model = fashionMnistModel(job.seed, data.inputShape);
  if (job.verbose > 0) model.summary();
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: job.learningRate }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  const monitor = data.validated ? "val_loss" : "loss";
  if (!data.validated) console.log("No --validation-data: EarlyStopping and ReduceLROnPlateau monitor loss");
  const callbacks: Callback[] = [
    new EarlyStopping({ monitor, patience: job.patience, restoreBestWeights: true }),
    new ReduceLROnPlateau({ monitor, factor: 0.5, patience: 3, minLr: 1e-6, verbose: 1 }),
  ];
  if (job.logdir) callbacks.push(new TensorBoard({ logDir: job.logdir, histogramFreq: 1 }));
  const paths = job.checkpointDir ? checkpointPaths(job.checkpointDir) : null;
  if (paths) {
    callbacks.push(
      new ModelCheckpoint(paths.best, { monitor, saveBestOnly: true }),
      new BackupAndRestore({ backupDir: paths.backup, saveFreq: BACKUP_EVERY_STEPS }),
    );
  }
  const history = await data.fit(model, {
    epochs: job.epochs,
    batchSize: job.batchSize,
    callbacks,
    verbose: job.verbose,
    seed: job.seed,
    backend: job.backend,
    ...(job.workers > 0 ? { distribute: distributeOptions(job) } : {}),
    ...(signal ? { signal } : {}),
  });
  if (paths) {
    await model.saveWeights(paths.final);
    console.log(`Final weights written to ${paths.final}`);
  }
  const test = await data.test(model);
  if (test) {
    console.log(`\nTest accuracy: ${test.accuracy.toFixed(4)}`);
    console.log(`Test loss: ${test.loss.toFixed(4)}`);
  } else {
    console.log("\nNo --test-data: no test accuracy");
  }
  const fit = model.lastFit!;
  const summary = {
    epochs_run: fit.epochsRun,
    history: history.history,
    test,
    wall_s: Math.round(fit.wallSeconds * 10) / 10,
    train_samples_per_s: Math.round(fit.samplesProcessed / fit.wallSeconds),
    samples_processed: fit.samplesProcessed,
    run_samples_processed: fit.runSamplesProcessed,
    resumed_from: fit.resumedFrom && {
      epoch: fit.resumedFrom.epoch,
      batch: fit.resumedFrom.batch,
      samples_processed: fit.resumedFrom.runSamples,
    },
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
    await Deno.mkdir(dirname(job.summary), { recursive: true });
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
      Deno.exit(EXIT_BAD_INPUT);
    }
    throw e;
  }
  if (job === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  const abort = new AbortController();
  let stoppedBy: "SIGTERM" | "SIGINT" | undefined;
  const onSignal = (name: "SIGTERM" | "SIGINT") => () => {
    if (abort.signal.aborted) Deno.exit(signalExitCode(name));
    stoppedBy = name;
    console.log(`\n${name} received: stopping at the next step boundary (again to exit at once)`);
    abort.abort(name);
  };
  const listeners = (["SIGTERM", "SIGINT"] as const).map((name) => [name, onSignal(name)] as const);
  for (const [name, listener] of listeners) Deno.addSignalListener(name, listener);
  try {
    await runJob(job, abort.signal);
  } catch (e) {
    if (e instanceof TrainingInterruptedError || e instanceof StoppedWaitingError) {
      const next = job.checkpointDir
        ? ` (${checkpointPaths(job.checkpointDir).backup}). Continue with the same options and --resume`
        : ". Pass --checkpoint-dir DIR to keep a backup";
      console.log(e.message + next);
      Deno.exit(exitCodeFor(e, stoppedBy));
    }
    if (e instanceof NotEnoughWorkersError) {
      const kept = job.checkpointDir
        ? ` A backup of the position before step ${e.step} is in ${
          checkpointPaths(job.checkpointDir).backup
        }; ` +
          "start workers and run again with --resume."
        : " Pass --checkpoint-dir DIR to keep a backup for --resume.";
      console.error(`error: ${e.message}.${kept}`);
      Deno.exit(exitCodeFor(e));
    }
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(exitCodeFor(e));
  } finally {
    for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
  }
}
