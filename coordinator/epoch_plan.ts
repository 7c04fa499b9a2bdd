/**
 * Which rows each step of an epoch trains on (Keras `EpochIterator`): `stepsPerEpoch` batches of
 * `batchSize` rows in a fixed row order, the last batch partial when the rows do not divide evenly.
 *
 * @module
 */
import { Rng } from "../shared/model/mod.ts";

/** Options of {@link EpochPlan}. */
export interface EpochPlanOptions {
  /** Rows of the training data (after the validation split). */
  samples: number;
  batchSize: number;
  /** Visit the rows of each epoch in a permutation seeded by `(seed, epoch)`; else in row order. */
  shuffle: boolean;
  seed: number;
  /**
   * The rows of an epoch in visiting order, when the data chooses it (a shuffle buffer).
   * @default a permutation of `(seed, epoch)` when shuffling, else row order
   */
  order?: (epoch: number) => Int32Array;
}

/** One step of an epoch: its 0-based batch number and the rows it trains on, in batch order. */
export interface PlannedStep {
  batch: number;
  indices: Int32Array;
  /** The rows of the epoch's next step (read ahead while this one computes); null for the last. */
  next: Int32Array | null;
}

/** The epochs of one `fit`: every row once per epoch, in an order that depends only on the seed and epoch. */
export class EpochPlan {
  readonly samples: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  /** Batches per epoch, the last one partial: `ceil(samples / batchSize)`. */
  readonly stepsPerEpoch: number;
  readonly #order: ((epoch: number) => Int32Array) | undefined;

  constructor(opts: EpochPlanOptions) {
    if (!Number.isInteger(opts.samples) || opts.samples < 0) {
      throw new RangeError(`Cannot plan epochs as samples must be an integer >= 0: received ${opts.samples}`);
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize <= 0) {
      throw new RangeError(
        `Cannot plan epochs as batchSize must be a positive integer: received batchSize=${opts.batchSize}`,
      );
    }
    this.samples = opts.samples;
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle;
    this.seed = opts.seed;
    this.stepsPerEpoch = Math.ceil(opts.samples / opts.batchSize);
    this.#order = opts.order;
  }

  /**
   * The row order of `epoch`: the data's own order when it has one, else a permutation seeded by
   * `(seed, epoch)` when shuffling, else 0 … n − 1.
   */
  order(epoch: number): Int32Array {
    if (this.#order) {
      const rows = this.#order(epoch);
      if (rows.length !== this.samples) {
        throw new RangeError(
          `Cannot run epoch ${epoch} as the data's order lists ${rows.length} rows instead of ${this.samples}: ` +
            "an epoch visits every row once",
        );
      }
      return rows;
    }
    if (this.shuffle) return new Rng(this.seed, 0x100000 + epoch).permutation(this.samples);
    const rows = new Int32Array(this.samples);
    for (let i = 0; i < rows.length; i++) rows[i] = i;
    return rows;
  }

  /** The steps of `epoch` from batch `from` on (a resumed epoch skips the batches it already applied). */
  *steps(epoch: number, from = 0): Generator<PlannedStep> {
    const order = this.order(epoch);
    const rows = (batch: number) =>
      order.subarray(batch * this.batchSize, Math.min(this.samples, (batch + 1) * this.batchSize));
    for (let batch = from; batch < this.stepsPerEpoch; batch++) {
      yield { batch, indices: rows(batch), next: batch + 1 < this.stepsPerEpoch ? rows(batch + 1) : null };
    }
  }
}
