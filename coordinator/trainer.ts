/**
 * The one training loop (Keras `fit`): epochs → steps → callbacks → validation → epoch end. It runs the
 * same whether the pool computes in-process or on N workers over NATS; callbacks see only combined logs.
 */
import {
  type BackupReason,
  type CallbackList,
  type History,
  isRunBackup,
  type Logs,
  type RunAccess,
  type TrainingPosition,
} from "../shared/callbacks/mod.ts";
import { type Network, type Optimizer, Rng } from "../shared/model/mod.ts";
import type { MetricSpec } from "../shared/model/mod.ts";
import { type Dataset } from "./data.ts";
import type { WorkerPool } from "./pool.ts";
import { type ReducedStep, reduceSlices } from "./reduce.ts";
import { median } from "../shared/stats.ts";

/** Median timings of a step's phases, in milliseconds. */
export interface StepTimings {
  /** The pool's whole trainStep (worker compute plus transfer for NATS pools). */
  compute_ms: number;
  reduce_ms: number;
  optimizer_ms: number;
  /** Further phases measured by the pool (NATS: publish_ms, round_ms, transfer_ms). */
  [phase: string]: number;
}

export interface TrainLoopOptions {
  epochs: number;
  batchSize: number;
  shuffle: boolean;
  initialEpoch: number;
  seed: number;
  validation: boolean;
  callbacks: CallbackList;
  metrics: MetricSpec[];
  /** The rows of an epoch in visiting order, when the data chooses it (a shuffle buffer). @default a permutation of (seed, epoch) */
  order?: (epoch: number) => Int32Array;
  /** Aborting it stops the loop at the next step boundary with a {@link TrainingInterruptedError}. */
  signal?: AbortSignal;
}

/** What the loop reports besides the History. */
export interface TrainReport {
  /** Epochs this call completed. */
  epochsRun: number;
  /** Samples this call trained on (a resumed run counts only what it ran itself). */
  samplesProcessed: number;
  /** Steps this call applied. */
  steps: number;
  /** Where this call resumed from, or null when it started afresh. */
  resumedFrom: TrainingPosition | null;
  /**
   * Samples of the whole run, up to its end, counted from the backup on: steps done after the last
   * backup by an interrupted process and run again after the resume count once.
   */
  runSamplesProcessed: number;
  timings: StepTimings;
}

/** The model side the loop needs: weights, optimizer, and the stop flag callbacks set. */
export interface TrainTarget {
  network: Network;
  optimizer: Optimizer;
  stopTraining: boolean;
}

/** Applies a reduced step: the optimizer on params, each stateful layer's batch statistics on state. */
export function applyStep(target: TrainTarget, step: ReducedStep): void {
  target.optimizer.apply(target.network.params, step.grads);
  target.network.updateStateFromBatch(step.batchStats);
}

/** Keras log names for an evaluation's sums. */
export function evalLogs(
  metrics: MetricSpec[],
  r: { count: number; lossSum: number; metricSums: number[]; regLoss: number },
  prefix = "",
): Record<string, number> {
  const logs: Record<string, number> = {};
  metrics.forEach((m, i) => logs[prefix + m.name] = r.metricSums[i]! / r.count);
  logs[prefix + "loss"] = r.lossSum / r.count + r.regLoss;
  return logs;
}

/**
 * Raised when the loop stops at a step boundary because its `signal` was aborted (SIGTERM, SIGINT),
 * after writing the backups of every {@link RunBackup} callback. `onTrainEnd` does not run, so the
 * backup is kept and a later `fit` resumes from `position`.
 */
export class TrainingInterruptedError extends Error {
  override name = "TrainingInterruptedError";
  /** Where the run stopped: the next step to run on resume. */
  readonly position: TrainingPosition;
  /** Backup callbacks that wrote the position (none means the work since the last epoch is lost). */
  readonly backups: number;

  constructor(position: TrainingPosition, backups: number, reason: unknown) {
    super(
      `Training interrupted (${String(reason)}) before batch ${position.batch + 1} of epoch ${
        position.epoch + 1
      }` + (backups > 0 ? "; the backup holds this position" : "; no BackupAndRestore callback saved it"),
      { cause: reason },
    );
    this.position = position;
    this.backups = backups;
  }
}

/** The position at the start of `epoch`, keeping the run's totals. */
function freshPosition(
  epoch: number,
  metrics: number,
  run: { runSamples: number; runSteps: number },
): TrainingPosition {
  return {
    epoch,
    batch: 0,
    stopTraining: false,
    seen: 0,
    lossSum: 0,
    regSum: 0,
    metricSums: new Array<number>(metrics).fill(0),
    runSamples: run.runSamples,
    runSteps: run.runSteps,
  };
}

/**
 * Runs the training loop. When a callback backs up the run ({@link isRunBackup}), the loop first asks
 * it to restore, then continues from the restored position: same epoch, same batch, same running sums,
 * so the result equals an uninterrupted run's.
 */
export async function trainLoop(
  target: TrainTarget,
  pool: WorkerPool,
  train: Dataset,
  opts: TrainLoopOptions,
): Promise<TrainReport> {
  const { callbacks, metrics } = opts;
  const n = train.length;
  const steps = Math.ceil(n / opts.batchSize);
  const timings = { compute: [] as number[], reduce: [] as number[], optimizer: [] as number[] };
  /** The reduced gradient of each step with workers, reused step after step. */
  const reduced = new Float32Array(target.network.params.length);
  let samples = 0;
  let epochsRun = 0;
  let totalSteps = 0;
  target.stopTraining = false;
  await callbacks.onTrainBegin();
  const backups = callbacks.callbacks.filter(isRunBackup);
  const run: RunAccess = {
    params: target.network.params,
    state: target.network.state,
    optimizer: target.optimizer,
    callbacks: callbacks.callbacks,
    fit: {
      batchSize: opts.batchSize,
      stepsPerEpoch: steps,
      samples: n,
      seed: opts.seed,
      shuffle: opts.shuffle,
    },
  };
  let resumed: TrainingPosition | null = null;
  for (const b of backups) resumed = (await b.restoreRun(run)) ?? resumed;
  const pos: TrainingPosition = resumed
    ? { ...resumed, metricSums: [...resumed.metricSums] }
    : freshPosition(opts.initialEpoch, metrics.length, { runSamples: 0, runSteps: 0 });
  target.stopTraining = pos.stopTraining;
  const snapshot = (): TrainingPosition => ({ ...pos, metricSums: [...pos.metricSums] });
  const backup = async (reason: BackupReason) => {
    for (const b of backups) await b.backupRun(run, snapshot(), reason);
  };
  const stopIfAborted = async () => {
    if (!opts.signal?.aborted) return;
    await backup("interrupt");
    throw new TrainingInterruptedError(snapshot(), backups.length, opts.signal.reason);
  };
  while (pos.epoch < opts.epochs && !target.stopTraining) {
    await stopIfAborted();
    await callbacks.onEpochBegin(pos.epoch);
    const order = opts.order?.(pos.epoch) ??
      (opts.shuffle ? new Rng(opts.seed, 0x100000 + pos.epoch).permutation(n) : identity(n));
    while (pos.batch < steps) {
      await stopIfAborted();
      const b = pos.batch;
      await callbacks.onBatchBegin(b);
      const indices = order.subarray(b * opts.batchSize, Math.min(n, (b + 1) * opts.batchSize));
      const t0 = performance.now();
      // A failed step changed nothing yet (lost workers, a vanished server): keep a backup of the
      // position before it, so the run can resume exactly.
      let slices;
      try {
        slices = await pool.trainStep("train", {
          step: target.optimizer.iterations,
          indices,
          params: target.network.params,
          state: target.network.state,
        });
      } catch (error) {
        // A stop request that ended a wait inside the step (a pause for workers) is a stop, not a failure.
        await stopIfAborted();
        await backup("interrupt");
        throw error;
      }
      const t1 = performance.now();
      const step = reduceSlices(slices, reduced);
      if (step.count !== indices.length) {
        throw new Error(
          `Step ${target.optimizer.iterations} covered ${step.count} samples instead of ${indices.length}: ` +
            "a worker answered for the wrong slice",
        );
      }
      const t2 = performance.now();
      applyStep(target, step);
      const t3 = performance.now();
      timings.compute.push(t1 - t0);
      timings.reduce.push(t2 - t1);
      timings.optimizer.push(t3 - t2);
      samples += step.count;
      totalSteps++;
      pos.batch++;
      pos.seen += step.count;
      pos.runSamples += step.count;
      pos.runSteps++;
      pos.lossSum += step.lossSum;
      pos.regSum += step.regLoss * step.count;
      step.metricSums.forEach((m, i) => pos.metricSums[i]! += m);
      await callbacks.onBatchEnd(b, runningLogs(metrics, pos));
      if (target.stopTraining) break;
      await backup("batch");
    }
    await stopIfAborted();
    const logs = pos.seen > 0 ? runningLogs(metrics, pos) : {};
    if (opts.validation) {
      await callbacks.onTestBegin();
      const r = await pool.evaluate("val", target.network.params, target.network.state, opts.batchSize);
      const valLogs = evalLogs(metrics, r);
      await callbacks.onTestEnd(valLogs);
      Object.assign(logs, evalLogs(metrics, r, "val_"));
    }
    logs.learning_rate = target.optimizer.learningRate;
    await callbacks.onEpochEnd(pos.epoch, logs);
    epochsRun++;
    Object.assign(pos, freshPosition(pos.epoch + 1, metrics.length, pos), {
      stopTraining: target.stopTraining,
    });
    await backup("epoch");
  }
  await callbacks.onTrainEnd();
  return {
    epochsRun,
    samplesProcessed: samples,
    steps: totalSteps,
    resumedFrom: resumed,
    runSamplesProcessed: pos.runSamples,
    timings: {
      compute_ms: median(timings.compute),
      reduce_ms: median(timings.reduce),
      optimizer_ms: median(timings.optimizer),
    },
  };
}

function runningLogs(metrics: MetricSpec[], pos: TrainingPosition): Record<string, number> {
  return evalLogs(metrics, {
    count: pos.seen,
    lossSum: pos.lossSum,
    metricSums: pos.metricSums,
    regLoss: pos.regSum / pos.seen,
  });
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

export type { History, Logs };
