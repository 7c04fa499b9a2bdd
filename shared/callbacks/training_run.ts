/**
 * The training loop's own state, as the loop (coordinator/trainer.ts) hands it to a callback that backs
 * up the run: where the loop stands ({@link TrainingPosition}), what it trains ({@link RunAccess}), and
 * the protocol such a callback implements ({@link RunBackup}). `BackupAndRestore` is one implementation;
 * the loop knows only this module.
 *
 * @module
 */
import { Callback } from "./callback.ts";

/**
 * Where the training loop stands between two steps: with the weights, the optimizer state and the
 * callbacks' states, everything an exact resume needs (shuffling and dropout derive from the seed, the
 * epoch and the optimizer's iteration count, so no random state is saved).
 */
export interface TrainingPosition {
  /** 0-based epoch in progress. */
  epoch: number;
  /** Batches of `epoch` already applied; equal to the steps per epoch once only validation is left. */
  batch: number;
  /** Whether a callback had asked training to stop (the run then only has `onTrainEnd` left). */
  stopTraining: boolean;
  /** Samples of `epoch` seen so far (the running means' denominator). */
  seen: number;
  /** Running sum of the per-sample loss over `epoch`. */
  lossSum: number;
  /** Running sum of the regularization penalty, weighted by samples. */
  regSum: number;
  /** Running sums of each compiled metric over `epoch`. */
  metricSums: number[];
  /** Samples trained on since the run began, over every process that ran it. */
  runSamples: number;
  /** Steps applied since the run began, over every process that ran it. */
  runSteps: number;
}

/** The optimizer as a backup sees it: its step count, its slot arrays and its learning rate. */
export interface BackupOptimizer {
  iterations: number;
  slots: Float32Array[];
  learningRate: number;
  /** Non-null when the learning rate follows a schedule of `iterations` (then it is not restored). */
  readonly schedule: unknown;
}

/** What identifies a `fit` whose position a backup may resume: a different value makes it refuse. */
export interface FitFingerprint {
  batchSize: number;
  stepsPerEpoch: number;
  samples: number;
  seed: number;
  shuffle: boolean;
}

/** The run a {@link RunBackup} saves and restores, handed over by the training loop. */
export interface RunAccess {
  /** Trainable weights, updated in place on restore. */
  params: Float32Array;
  /** Non-trainable weights (BatchNorm moving statistics), updated in place on restore. */
  state: Float32Array;
  optimizer: BackupOptimizer;
  /** Every callback of the `fit`, in call order; those with `getState`/`setState` are saved. */
  callbacks: readonly Callback[];
  fit: FitFingerprint;
}

/** Why the loop asks for a backup. */
export type BackupReason = "batch" | "epoch" | "interrupt";

/**
 * A callback that backs up the whole run. The training loop calls {@link restoreRun} after every
 * callback's `onTrainBegin`, and {@link backupRun} after every callback's `onBatchEnd` and `onEpochEnd`
 * and when it is interrupted, so the backup holds the state all callbacks reached.
 */
export interface RunBackup {
  /** Restores the weights, optimizer and callback states in place; returns where to continue, or null. */
  restoreRun(run: RunAccess): Promise<TrainingPosition | null>;
  /** Writes a backup when `reason` is due under this callback's frequency (always for `"interrupt"`). */
  backupRun(run: RunAccess, position: TrainingPosition, reason: BackupReason): Promise<void>;
}

/** Whether a callback backs up the run (see {@link RunBackup}). */
export function isRunBackup(c: unknown): c is RunBackup & Callback {
  return c instanceof Callback && typeof (c as Partial<RunBackup>).restoreRun === "function" &&
    typeof (c as Partial<RunBackup>).backupRun === "function";
}
