/**
 * The one training loop (Keras `fit`): epochs → steps → callbacks → validation → epoch end. It runs the
 * same whether the pool computes in-process or on N workers over NATS; callbacks see only combined logs.
 */
import { type CallbackList, type History, type Logs } from "../shared/callbacks/mod.ts";
import { type Network, type Optimizer, Rng } from "../shared/model/mod.ts";
import type { MetricSpec } from "../shared/model/mod.ts";
import { type Dataset } from "./data.ts";
import type { WorkerPool } from "./pool.ts";
import { type ReducedStep, reduceSlices } from "./reduce.ts";

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
}

/** What the loop reports besides the History. */
export interface TrainReport {
  epochsRun: number;
  samplesProcessed: number;
  steps: number;
  timings: StepTimings;
}

/** The model side the loop needs: weights, optimizer, and the stop flag callbacks set. */
export interface TrainTarget {
  network: Network;
  optimizer: Optimizer;
  stopTraining: boolean;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Applies a reduced step: optimizer on params, BatchNorm moving averages on state. */
export function applyStep(
  target: TrainTarget,
  step: ReducedStep,
  momentumOf: (layer: string) => number,
): void {
  target.optimizer.apply(target.network.params, step.grads);
  const state = target.network.state;
  for (const stat of step.batchStats) {
    const momentum = momentumOf(stat.layer);
    const mean = target.network.stateLayout.find((e) => e.path === `${stat.layer}/moving_mean`)!;
    const variance = target.network.stateLayout.find((e) => e.path === `${stat.layer}/moving_variance`)!;
    for (let c = 0; c < stat.mean.length; c++) {
      state[mean.offset + c] = state[mean.offset + c]! * momentum + stat.mean[c]! * (1 - momentum);
      state[variance.offset + c] = state[variance.offset + c]! * momentum +
        stat.variance[c]! * (1 - momentum);
    }
  }
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

/** Runs the training loop. */
export async function trainLoop(
  target: TrainTarget,
  pool: WorkerPool,
  train: Dataset,
  opts: TrainLoopOptions,
  momentumOf: (layer: string) => number,
): Promise<TrainReport> {
  const { callbacks, metrics } = opts;
  const n = train.length;
  const steps = Math.ceil(n / opts.batchSize);
  const timings = { compute: [] as number[], reduce: [] as number[], optimizer: [] as number[] };
  let samples = 0;
  let epochsRun = 0;
  let totalSteps = 0;
  target.stopTraining = false;
  await callbacks.onTrainBegin();
  for (let epoch = opts.initialEpoch; epoch < opts.epochs; epoch++) {
    await callbacks.onEpochBegin(epoch);
    const order = opts.shuffle ? new Rng(opts.seed, 0x100000 + epoch).permutation(n) : identity(n);
    let seen = 0, lossSum = 0, regSum = 0;
    const metricSums = metrics.map(() => 0);
    let logs: Record<string, number> = {};
    for (let b = 0; b < steps; b++) {
      await callbacks.onBatchBegin(b);
      const indices = order.subarray(b * opts.batchSize, Math.min(n, (b + 1) * opts.batchSize));
      const t0 = performance.now();
      const slices = await pool.trainStep("train", {
        step: target.optimizer.iterations,
        indices,
        params: target.network.params,
        state: target.network.state,
      });
      const t1 = performance.now();
      const step = reduceSlices(slices);
      if (step.count !== indices.length) {
        throw new Error(
          `Step ${target.optimizer.iterations} covered ${step.count} samples instead of ${indices.length}: ` +
            "a worker answered for the wrong slice",
        );
      }
      const t2 = performance.now();
      applyStep(target, step, momentumOf);
      const t3 = performance.now();
      timings.compute.push(t1 - t0);
      timings.reduce.push(t2 - t1);
      timings.optimizer.push(t3 - t2);
      seen += step.count;
      samples += step.count;
      totalSteps++;
      lossSum += step.lossSum;
      regSum += step.regLoss * step.count;
      step.metricSums.forEach((m, i) => metricSums[i]! += m);
      logs = evalLogs(metrics, { count: seen, lossSum, metricSums, regLoss: regSum / seen });
      await callbacks.onBatchEnd(b, logs);
      if (target.stopTraining) break;
    }
    if (opts.validation) {
      await callbacks.onTestBegin();
      const r = await pool.evaluate("val", target.network.params, target.network.state, opts.batchSize);
      const valLogs = evalLogs(metrics, r);
      await callbacks.onTestEnd(valLogs);
      Object.assign(logs, evalLogs(metrics, r, "val_"));
    }
    logs.learning_rate = target.optimizer.learningRate;
    await callbacks.onEpochEnd(epoch, logs);
    epochsRun++;
    if (target.stopTraining) break;
  }
  await callbacks.onTrainEnd();
  return {
    epochsRun,
    samplesProcessed: samples,
    steps: totalSteps,
    timings: {
      compute_ms: median(timings.compute),
      reduce_ms: median(timings.reduce),
      optimizer_ms: median(timings.optimizer),
    },
  };
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

export type { History, Logs };
