/**
 * The epoch's running loss and metrics (Keras's metric trackers): sample-weighted sums over the steps
 * so far, reported under Keras's log names.
 *
 * @module
 */
import type { TrainingPosition } from "../shared/callbacks/mod.ts";
import { metricOffsets, metricResult, type MetricSpec } from "../shared/model/mod.ts";

/** Loss and metric sums over some rows: what an evaluation returns. */
export interface MetricSums {
  count: number;
  lossSum: number;
  metricSums: readonly number[];
  /** Regularization penalty (not per sample). */
  regLoss: number;
}

/** Keras log names for an evaluation's sums: each metric, then `loss`, with an optional prefix (`val_`). */
export function evalLogs(metrics: readonly MetricSpec[], r: MetricSums, prefix = ""): Record<string, number> {
  const logs: Record<string, number> = {};
  const { offsets } = metricOffsets(metrics);
  metrics.forEach((m, i) => {
    const end = offsets[i + 1] ?? r.metricSums.length;
    logs[prefix + m.name] = metricResult(m, r.metricSums.slice(offsets[i], end), r.count);
  });
  logs[prefix + "loss"] = r.lossSum / r.count + r.regLoss;
  return logs;
}

/** The running sums of an epoch, as a backup stores them in the {@link TrainingPosition}. */
export type RunningSums = Pick<TrainingPosition, "seen" | "lossSum" | "regSum" | "metricSums">;

/** Running means of the loss and metrics over the steps of one epoch. */
export class RunningMetrics {
  #sums: RunningSums;

  /** Starts empty, or from the sums of a resumed epoch (copied). */
  constructor(readonly metrics: readonly MetricSpec[], from?: Readonly<RunningSums>) {
    this.#sums = from
      ? { seen: from.seen, lossSum: from.lossSum, regSum: from.regSum, metricSums: [...from.metricSums] }
      : {
        seen: 0,
        lossSum: 0,
        regSum: 0,
        metricSums: new Array(metricOffsets(metrics).total).fill(0),
      };
    const width = metricOffsets(metrics).total;
    if (this.#sums.metricSums.length !== width) {
      throw new RangeError(
        `Cannot resume the running metrics as the compiled metrics keep ${width} sums but the saved sums ` +
          `hold ${this.#sums.metricSums.length}: resume with the same compile options`,
      );
    }
  }

  /** Samples seen so far. */
  get seen(): number {
    return this.#sums.seen;
  }

  /** Adds one step's sums; its regularization penalty counts once per sample of the step. */
  add(step: MetricSums): void {
    const s = this.#sums;
    s.seen += step.count;
    s.lossSum += step.lossSum;
    s.regSum += step.regLoss * step.count;
    step.metricSums.forEach((m, i) => s.metricSums[i]! += m);
  }

  /** Keras's logs of the running means; `{}` before the first step. */
  logs(): Record<string, number> {
    const s = this.#sums;
    if (s.seen === 0) return {};
    return evalLogs(this.metrics, {
      count: s.seen,
      lossSum: s.lossSum,
      metricSums: s.metricSums,
      regLoss: s.regSum / s.seen,
    });
  }

  /** A copy of the sums, for a backup. */
  sums(): RunningSums {
    return { ...this.#sums, metricSums: [...this.#sums.metricSums] };
  }
}
