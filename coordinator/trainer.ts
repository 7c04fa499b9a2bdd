/**
 * The one training loop (Keras `fit`): epochs → steps → callbacks → validation → epoch end. It runs the
 * same whether the pool computes in-process or on N workers over NATS; callbacks see only combined logs.
 */
import {
  type BackupReason,
  type Callback,
  type CallbackList,
  type History,
  isRunBackup,
  type Logs,
  type RunAccess,
  type RunBackup,
  type TrainingPosition,
} from "../shared/callbacks/mod.ts";
import type { MetricSpec, Network, Optimizer, ResidentBuffers } from "../shared/model/mod.ts";
import type { Dataset } from "./data.ts";
import { EpochPlan } from "./epoch_plan.ts";
import type { WorkerPool } from "./pool.ts";
import { type ReducedStep, reduceSlices } from "./reduce.ts";
import { evalLogs, RunningMetrics } from "./running_metrics.ts";
import { StepTimer } from "./step_timer.ts";

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
  target.optimizer.apply(target.network.params, step.grads, target.network.paramLayout, step.gradSquares);
  target.network.updateStateFromBatch(step.batchStats);
}

/**
 * Moves the parameters into the optimizer's own array, when it offers one, and returns its arrays:
 * each step's gradient is then written where the update reads it, and the update changes the
 * parameters where they are (no copies of the model's size around it).
 */
export function adoptResidentBuffers(target: TrainTarget): ResidentBuffers | undefined {
  const { network, optimizer } = target;
  const resident = optimizer.residentBuffers(network, network.params.length);
  if (resident && resident.params !== network.params) {
    resident.params.set(network.params);
    network.params = resident.params;
  }
  return resident;
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

/** Where the loop stands: the epoch and batch reached, the epoch's running metrics, the run's totals. */
class LoopState {
  epoch: number;
  batch: number;
  stopTraining: boolean;
  running: RunningMetrics;
  runSamples: number;
  runSteps: number;

  /** The state at the start of `epoch`, or at a resumed position. */
  constructor(metrics: readonly MetricSpec[], from: TrainingPosition | { epoch: number }) {
    const at = "batch" in from ? from : null;
    this.epoch = from.epoch;
    this.batch = at?.batch ?? 0;
    this.stopTraining = at?.stopTraining ?? false;
    this.running = new RunningMetrics(metrics, at ?? undefined);
    this.runSamples = at?.runSamples ?? 0;
    this.runSteps = at?.runSteps ?? 0;
  }

  /** Counts an applied step. */
  advance(step: ReducedStep): void {
    this.batch++;
    this.runSamples += step.count;
    this.runSteps++;
    this.running.add(step);
  }

  /** Moves to the start of the next epoch, keeping the run's totals. */
  nextEpoch(stopTraining: boolean): void {
    this.epoch++;
    this.batch = 0;
    this.stopTraining = stopTraining;
    this.running = new RunningMetrics(this.running.metrics);
  }

  /** A copy, for a backup or an error. */
  position(): TrainingPosition {
    return {
      epoch: this.epoch,
      batch: this.batch,
      stopTraining: this.stopTraining,
      ...this.running.sums(),
      runSamples: this.runSamples,
      runSteps: this.runSteps,
    };
  }
}

/** The callbacks that back up the run ({@link isRunBackup}), with the run they save. */
class Backups {
  readonly #list: (RunBackup & Callback)[];
  readonly #run: RunAccess;

  constructor(callbacks: CallbackList, target: TrainTarget, plan: EpochPlan) {
    this.#list = callbacks.callbacks.filter(isRunBackup);
    this.#run = {
      params: target.network.params,
      state: target.network.state,
      optimizer: target.optimizer,
      callbacks: callbacks.callbacks,
      fit: {
        batchSize: plan.batchSize,
        stepsPerEpoch: plan.stepsPerEpoch,
        samples: plan.samples,
        seed: plan.seed,
        shuffle: plan.shuffle,
      },
    };
  }

  get count(): number {
    return this.#list.length;
  }

  /** Restores the run from the last backup that has one; returns its position, or null. */
  async restore(): Promise<TrainingPosition | null> {
    let position: TrainingPosition | null = null;
    for (const b of this.#list) position = (await b.restoreRun(this.#run)) ?? position;
    return position;
  }

  async save(reason: BackupReason, position: TrainingPosition): Promise<void> {
    for (const b of this.#list) await b.backupRun(this.#run, position, reason);
  }
}

/**
 * Runs the training loop (Keras `fit`). When a callback backs up the run ({@link isRunBackup}), the
 * loop first asks it to restore, then continues from the restored position: same epoch, same batch,
 * same running sums, so the result equals an uninterrupted run's.
 */
export async function trainLoop(
  target: TrainTarget,
  pool: WorkerPool,
  train: Dataset,
  opts: TrainLoopOptions,
): Promise<TrainReport> {
  const { callbacks, metrics } = opts;
  const plan = new EpochPlan({
    samples: train.length,
    batchSize: opts.batchSize,
    shuffle: opts.shuffle,
    seed: opts.seed,
    ...(opts.order ? { order: opts.order } : {}),
  });
  const timer = new StepTimer(["compute_ms", "reduce_ms", "optimizer_ms"]);
  const resident = adoptResidentBuffers(target);
  /** The reduced gradient of each step with workers, reused step after step. */
  const reduced = resident?.grads ?? new Float32Array(target.network.params.length);
  let samples = 0, steps = 0, epochsRun = 0;

  target.stopTraining = false;
  await callbacks.onTrainBegin();
  const backups = new Backups(callbacks, target, plan);
  const resumed = await backups.restore();
  const loop = new LoopState(metrics, resumed ?? { epoch: opts.initialEpoch });
  target.stopTraining = loop.stopTraining;
  const stopIfAborted = async () => {
    if (!opts.signal?.aborted) return;
    await backups.save("interrupt", loop.position());
    throw new TrainingInterruptedError(loop.position(), backups.count, opts.signal.reason);
  };

  /** One step: the pool computes the slices' gradients, the coordinator reduces and applies them. */
  const trainStep = async (indices: Int32Array, next: Int32Array | null): Promise<ReducedStep> => {
    timer.start();
    let slices;
    try {
      slices = await pool.trainStep("train", {
        step: target.optimizer.iterations,
        indices,
        next,
        params: target.network.params,
        state: target.network.state,
        ...(resident ? { gradsInto: resident.grads } : {}),
      });
    } catch (error) {
      // A failed step changed nothing yet (lost workers, a vanished server): keep a backup of the
      // position before it, so the run can resume exactly. A stop request that ended a wait inside
      // the step (a pause for workers) is a stop, not a failure.
      await stopIfAborted();
      await backups.save("interrupt", loop.position());
      throw error;
    }
    timer.lap("compute_ms");
    const step = reduceSlices(slices, reduced);
    if (step.count !== indices.length) {
      throw new Error(
        `Step ${target.optimizer.iterations} covered ${step.count} samples instead of ${indices.length}: ` +
          "a worker answered for the wrong slice",
      );
    }
    timer.lap("reduce_ms");
    applyStep(target, step);
    timer.lap("optimizer_ms");
    return step;
  };

  while (loop.epoch < opts.epochs && !target.stopTraining) {
    await stopIfAborted();
    await callbacks.onEpochBegin(loop.epoch);
    for (const { batch, indices, next } of plan.steps(loop.epoch, loop.batch)) {
      await stopIfAborted();
      await callbacks.onBatchBegin(batch);
      const step = await trainStep(indices, next);
      loop.advance(step);
      samples += step.count;
      steps++;
      await callbacks.onBatchEnd(batch, loop.running.logs());
      if (target.stopTraining) break;
      await backups.save("batch", loop.position());
    }
    await stopIfAborted();
    const logs = loop.running.logs();
    if (opts.validation) {
      await callbacks.onTestBegin();
      const r = await pool.evaluate("val", target.network.params, target.network.state, opts.batchSize);
      await callbacks.onTestEnd(evalLogs(metrics, r));
      Object.assign(logs, evalLogs(metrics, r, "val_"));
    }
    logs.learning_rate = target.optimizer.learningRate;
    await callbacks.onEpochEnd(loop.epoch, logs);
    epochsRun++;
    loop.nextEpoch(target.stopTraining);
    await backups.save("epoch", loop.position());
  }
  await callbacks.onTrainEnd();
  return {
    epochsRun,
    samplesProcessed: samples,
    steps,
    resumedFrom: resumed,
    runSamplesProcessed: loop.runSamples,
    timings: timer.medians() as StepTimings,
  };
}

export type { History, Logs };
