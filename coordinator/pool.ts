/**
 * The seam between the training loop and where gradients are computed. The trainer talks to a
 * WorkerPool; an in-process pool and a NATS pool implement it, so callbacks, metrics and checkpoints
 * never know which one runs.
 */
import type { EvalResult, SliceResult } from "../shared/model/mod.ts";
import type { Dataset } from "./data.ts";

/** One optimizer step's request: which rows of the named dataset, at which weights. */
export interface StepRequest {
  /** Global step id (the optimizer's iteration count): seeds dropout, makes replies idempotent. */
  step: number;
  /** Row indices of the global batch, in batch order. */
  indices: Int32Array;
  /** Row indices of the following step's batch, when known: pools read them while this step computes. */
  next?: Int32Array | null;
  params: Float32Array;
  state: Float32Array;
  /**
   * Where a pool that computes the whole batch itself writes the gradient (the optimizer's own array,
   * read there without a copy). Pools that reduce slices ignore it.
   */
  gradsInto?: Float32Array;
}

export interface WorkerPool {
  /** Workers computing now. */
  readonly workers: number;
  /** The compute backend the workers use. */
  readonly backend: string;
  /** Makes a dataset available to all workers under a name (shipped once, cached). */
  setData(name: string, data: Dataset): Promise<void>;
  /**
   * Computes one step's gradients; results cover the batch and come back in slice order. Their arrays
   * may be buffers the pool reuses: they are valid until the next `trainStep`.
   */
  trainStep(data: string, req: StepRequest): Promise<SliceResult[]>;
  /** Loss and metric sums over all rows of a dataset, in chunks of `batchSize`. */
  evaluate(data: string, params: Float32Array, state: Float32Array, batchSize: number): Promise<EvalResult>;
  /** Model outputs for all rows, flat, in row order. */
  predict(data: string, params: Float32Array, state: Float32Array, batchSize: number): Promise<Float32Array>;
  /** Median per-step timings of the transport (transfer, publish, worker compute), when it measures them. */
  timings?(): Readonly<Record<string, number>>;
  /**
   * Ends the job. `stopped`: the run did not finish (an error, a signal), and its rerun may resume;
   * workers bound to the job wait for it instead of exiting. @default "finished"
   */
  close(outcome?: PoolCloseOutcome): Promise<void>;
}

/** How a run ended, as its workers learn it. */
export type PoolCloseOutcome = "finished" | "stopped";
