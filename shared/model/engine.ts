/**
 * The compute side of training: forward and backward passes of one slice of a batch, on whatever
 * TensorFlow.js backend is active. Used in-process by the local pool and by every worker process, so the
 * numbers cannot differ between them. Returns plain arrays; tensors never leave this file.
 */
import { tf } from "./tf.ts";
import type { Network } from "./network.ts";
import { type LossName, type LossSpec, type OutputValue, perSampleLoss } from "./losses.ts";
import { type MetricSpec, metricSums, metricWidth } from "./metrics.ts";
import type { CallContext, SliceExchange, SparseSquaresPart } from "./layers/mod.ts";
import { readTensorsInto, tensorsFinite } from "./backends/readback.ts";
import { disposeAbandonedTape, keepTapeClosuresYoung } from "./tfjs_internals.ts";
import { type GradSquares, sumRowSquares } from "./grad_squares.ts";

export type { GradSquares } from "./grad_squares.ts";

/** A batch of rows: one array per model input, plus labels (absent for predict). */
export interface Batch {
  inputs: { data: Float32Array; shape: number[] }[];
  y: { data: Float32Array; shape: number[] } | null;
}

/** What a worker returns for its slice of a training step. */
export interface SliceResult {
  count: number;
  /** Gradient of (mean loss over the slice + regularization), in the params layout. */
  grads: Float32Array;
  /** Sum of per-sample losses (without regularization). */
  lossSum: number;
  /** Each compiled metric's sums, one after the other (metrics.ts `metricSums`). */
  metricSums: number[];
  /** Regularization penalty at the step's weights. */
  regLoss: number;
  /** Per BatchNormalization layer, in call order: the slice's per-channel mean and biased variance. */
  batchStats: { layer: string; mean: Float32Array; variance: Float32Array }[];
  /**
   * Per trainable Embedding table, in params layout order: the rows the slice looked up and the sum
   * of the squares of each one's gradient slices (one per lookup), for optimizers that square the
   * gradient as Keras's TensorFlow backend does with IndexedSlices. Absent when the model has none.
   */
  gradSquares?: GradSquares[];
  /** Whether every value of `grads` is finite; set when the slice was asked to check (`checkFinite`). */
  gradsFinite?: boolean;
}

/** How {@link Engine.trainSlice} runs a slice and where its gradient goes. */
export interface TrainSliceOptions {
  /**
   * Reaches the other slices of the step when the batch is split (BatchNormalization normalizes over
   * the whole batch). @default none: the slice is the whole batch
   */
  exchange?: SliceExchange;
  /**
   * Receives the gradient (the result's `grads` is then this array): a buffer reused every step, or
   * the slot of shared memory a worker replies from. @default a new array
   */
  gradsInto?: Float32Array;
  /**
   * Checks the gradient for NaN and infinities while it is still in cache (on the wasm backend, in
   * SIMD where it was computed) and says so in `gradsFinite`. @default false
   */
  checkFinite?: boolean;
}

/** Loss and metric sums over some rows. */
export interface EvalResult {
  count: number;
  lossSum: number;
  metricSums: number[];
  regLoss: number;
}

export interface EngineSpec {
  loss: LossName | LossSpec;
  metrics: MetricSpec[];
  seed: number;
  /**
   * The labels arrive as `[n, size + 1]`: each row's labels (of this per-sample shape), then its
   * sample weight. The loss is then Keras's `sum_over_batch_size` of weighted losses,
   * Σ wᵢ·lossᵢ / n; metrics stay unweighted. Absent: no weights.
   */
  weightedLabels?: { shape: number[] };
}

export class Engine {
  constructor(readonly network: Network, readonly spec: EngineSpec) {
    // Every training step goes through an engine: its tape must not linger in old space (see there).
    keepTapeClosuresYoung();
    if (network.outputs.length !== 1) {
      throw new RangeError(
        `Shoal trains models with one output; model "${network.name}" has ${network.outputs.length}. ` +
          "Concatenate the outputs into one tensor.",
      );
    }
  }

  private weightTensors(params: Float32Array, state: Float32Array): [tf.Tensor[], tf.Tensor[]] {
    const make = (arr: Float32Array) => (e: { offset: number; size: number; shape: number[] }) =>
      tf.tensor(arr.subarray(e.offset, e.offset + e.size), e.shape, "float32");
    return [this.network.paramLayout.map(make(params)), this.network.stateLayout.map(make(state))];
  }

  private context(training: boolean, step: number, rowOffset: number, exchange?: SliceExchange): CallContext {
    return {
      training,
      seed: this.spec.seed,
      step,
      rowOffset,
      batchStats: [],
      logits: new Map(),
      ...(training ? { sparseGradSquares: new Map() } : {}),
      ...(exchange ? { exchange } : {}),
    };
  }

  private outputValue(out: tf.Tensor, ctx: CallContext): OutputValue {
    const layer = this.network.outputs[0]!.node.layer.name!;
    const logits = ctx.logits.get(layer);
    return logits ? { output: out, logits } : { output: out };
  }

  private regularization(params: tf.Tensor[]): tf.Scalar {
    let total: tf.Scalar = tf.scalar(0);
    this.network.paramLayout.forEach((e, i) => {
      if (e.regularizer) total = tf.add(total, e.regularizer.penalty(params[i]!));
    });
    return total;
  }

  /** The labels of a batch and, when the spec says they carry them, the sample weights ([n]). */
  private labels(batch: Batch): { y: tf.Tensor; weights: tf.Tensor | null } {
    const all = tf.tensor(batch.y!.data, batch.y!.shape, "float32");
    const weighted = this.spec.weightedLabels;
    if (!weighted) return { y: all, weights: null };
    const n = all.shape[0]!, size = all.shape[1]! - 1;
    return {
      y: tf.reshape(tf.slice(all, [0, 0], [n, size]), [n, ...weighted.shape]),
      weights: tf.reshape(tf.slice(all, [0, size], [n, 1]), [n]),
    };
  }

  private inputTensors(batch: Batch): tf.Tensor[] {
    return batch.inputs.map((x) => tf.tensor(x.data, x.shape, "float32"));
  }

  /**
   * Forward and backward pass of one slice with dropout on and batch statistics; see
   * {@link TrainSliceOptions} for a split batch, where the gradient goes and its check.
   */
  trainSlice(
    params: Float32Array,
    state: Float32Array,
    batch: Batch,
    step: number,
    rowOffset: number,
    opts: TrainSliceOptions = {},
  ): SliceResult {
    const { exchange, gradsInto } = opts;
    if (!batch.y) throw new TypeError("Cannot train without labels (y)");
    const count = batch.inputs[0]!.shape[0]!;
    const ctx = this.context(true, step, rowOffset, exchange);
    let kept: tf.Tensor[] = [];
    let result!: SliceResult;
    try {
      tf.tidy(() => {
        const [ps, ss] = this.weightTensors(params, state);
        const xs = this.inputTensors(batch);
        const { y, weights } = this.labels(batch);
        let output!: tf.Tensor, perSample!: tf.Tensor, reg!: tf.Scalar;
        const f = (...w: tf.Tensor[]) => {
          const out = this.network.forward(w, ss, xs, ctx)[0]!;
          const unweighted = perSampleLoss(this.spec.loss, y, this.outputValue(out, ctx));
          const losses = weights ? tf.mul(unweighted, weights) : unweighted;
          const r = this.regularization(w);
          output = tf.keep(out);
          perSample = tf.keep(losses);
          reg = tf.keep(r);
          kept = [output, perSample, reg];
          return tf.add(tf.mean(losses), r) as tf.Scalar;
        };
        const { grads } = tf.valueAndGrads(f)(ps);
        const gradLength = grads.reduce((n, g) => n + g.size, 0);
        if (gradsInto && gradsInto.length !== gradLength) {
          throw new RangeError(
            `Cannot read a gradient of ${gradLength} values into an array of ${gradsInto.length}: ` +
              "give an array of the model's parameter count",
          );
        }
        const flat = gradsInto ?? new Float32Array(gradLength);
        readTensorsInto(grads, flat);
        const finite = opts.checkFinite ? tensorsFinite(grads, flat) : undefined;
        // One readback for the rest: loss and metric sums, regularization, batch statistics.
        const parts: tf.Tensor[] = [tf.reshape(tf.sum(perSample), [1])];
        for (const m of this.spec.metrics) parts.push(metricSums(m, y, output));
        parts.push(tf.reshape(reg, [1]));
        for (const s of ctx.batchStats) parts.push(tf.reshape(s.mean, [-1]), tf.reshape(s.variance, [-1]));
        const squares = this.#sparseEntries(ctx);
        for (const e of squares) for (const p of e.parts) parts.push(tf.reshape(p.tensor, [-1]));
        const all = tf.concat(parts).dataSync() as Float32Array;
        let at = 0;
        const take = (n: number) => all.subarray(at, at += n);
        const lossSum = take(1)[0]!;
        const sums = Array.from(take(this.spec.metrics.reduce((n, m) => n + metricWidth(m), 0)));
        const regLoss = take(1)[0]!;
        result = {
          count,
          grads: flat,
          ...(finite === undefined ? {} : { gradsFinite: finite }),
          lossSum,
          metricSums: sums,
          regLoss,
          batchStats: ctx.batchStats.map((s) => ({
            layer: s.layer,
            mean: take(s.mean.size),
            variance: take(s.variance.size),
          })),
          ...(squares.length > 0
            ? {
              gradSquares: squares.map((e): GradSquares => {
                const read = e.parts.map((p) => ({ rows: p.rows, values: take(p.tensor.size) }));
                // A table looked up by several calls: their sums added in the order the gradient ran.
                const sum = read.length === 1 ? read[0]! : sumRowSquares(read, e.rowSize);
                return { offset: e.offset, size: e.size, rowSize: e.rowSize, ...sum };
              }),
            }
            : {}),
        };
      });
      return result;
    } catch (error) {
      disposeAbandonedTape();
      throw error;
    } finally {
      for (const t of kept) t.dispose();
      for (const s of ctx.batchStats) {
        s.mean.dispose();
        s.variance.dispose();
      }
      for (const parts of ctx.sparseGradSquares?.values() ?? []) for (const p of parts) p.tensor.dispose();
    }
  }

  /**
   * The recorded gradient squares of trainable variables, in params layout order. A regularized
   * variable has none: its penalty's gradient is dense, and so is the sum Keras applies.
   */
  #sparseEntries(
    ctx: CallContext,
  ): { offset: number; size: number; rowSize: number; parts: SparseSquaresPart[] }[] {
    const recorded = ctx.sparseGradSquares;
    if (!recorded || recorded.size === 0) return [];
    return this.network.paramLayout.flatMap((e) => {
      const parts = recorded.get(e.path);
      if (!parts || parts.length === 0 || e.regularizer) return [];
      return [{ offset: e.offset, size: e.size, rowSize: e.size / e.shape[0]!, parts }];
    });
  }

  /** Loss and metric sums with dropout off and moving statistics. */
  evaluate(params: Float32Array, state: Float32Array, batch: Batch): EvalResult {
    if (!batch.y) throw new TypeError("Cannot evaluate without labels (y)");
    let result!: EvalResult;
    tf.tidy(() => {
      const ctx = this.context(false, 0, 0);
      const [ps, ss] = this.weightTensors(params, state);
      const { y, weights } = this.labels(batch);
      const out = this.network.forward(ps, ss, this.inputTensors(batch), ctx)[0]!;
      const unweighted = perSampleLoss(this.spec.loss, y, this.outputValue(out, ctx));
      const losses = weights ? tf.mul(unweighted, weights) : unweighted;
      result = {
        count: batch.inputs[0]!.shape[0]!,
        lossSum: tf.sum(losses).dataSync()[0]!,
        metricSums: this.spec.metrics.length === 0
          ? []
          : Array.from(tf.concat(this.spec.metrics.map((m) => metricSums(m, y, out))).dataSync()),
        regLoss: this.regularization(ps).dataSync()[0]!,
      };
    });
    return result;
  }

  /** Model outputs with dropout off, as a flat array of shape [n, ...outputShape]. */
  predict(params: Float32Array, state: Float32Array, batch: Batch): Float32Array {
    let result!: Float32Array;
    tf.tidy(() => {
      const [ps, ss] = this.weightTensors(params, state);
      const out = this.network.forward(ps, ss, this.inputTensors(batch), this.context(false, 0, 0))[0]!;
      result = out.dataSync() as Float32Array;
    });
    return result;
  }
}
