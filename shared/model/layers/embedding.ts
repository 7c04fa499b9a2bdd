/**
 * `Embedding`: maps integer token ids `[steps]` to rows of a trainable `embeddings` matrix
 * `[inputDim, outputDim]`, giving `[steps, outputDim]`. Ids arrive as float32 (the data path is
 * float32; ids are exact up to 2^24) and are cast to int32. An id outside `[0, inputDim)` is an error
 * in Keras on CPU; here it reads as zeros (TensorFlow.js `gather`), so check the data's range.
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import { ascendingUnique } from "../grad_squares.ts";
import {
  type CallContext,
  Layer,
  type LayerOptions,
  type Shape,
  type SparseSquaresPart,
  type WeightSpec,
} from "./layer.ts";

export interface EmbeddingOptions extends LayerOptions {
  /** @default "uniform" (Keras's RandomUniform in [-0.05, 0.05]) */
  embeddingsInitializer?: string;
  /** @default null */
  embeddingsRegularizer?: Regularizer | null;
  /** Keras's masking of id 0; not supported (must be false). @default false */
  maskZero?: boolean;
}

export class Embedding extends Layer {
  readonly className = "Embedding";
  readonly inputDim: number;
  readonly outputDim: number;
  readonly embeddingsInitializer: InitializerName;
  readonly embeddingsRegularizer: Regularizer | null;

  constructor(inputDim: number, outputDim: number, opts: EmbeddingOptions = {}) {
    super(opts);
    for (const [what, v] of [["inputDim", inputDim], ["outputDim", outputDim]] as const) {
      if (!Number.isInteger(v) || v <= 0) {
        throw new RangeError(
          `Cannot create an Embedding layer as ${what} must be a positive integer: received ${what}=${v}`,
        );
      }
    }
    if (opts.maskZero) {
      throw new TypeError(
        "Cannot create an Embedding layer with maskZero=true as Shoal does not propagate masks: pad " +
          "sequences to one length and use maskZero=false",
      );
    }
    this.inputDim = inputDim;
    this.outputDim = outputDim;
    this.embeddingsInitializer = resolveInitializer(opts.embeddingsInitializer ?? "uniform");
    this.embeddingsRegularizer = opts.embeddingsRegularizer ?? null;
  }

  protected override makeWeights(): WeightSpec[] {
    return [{
      name: "embeddings",
      shape: [this.inputDim, this.outputDim],
      trainable: true,
      initializer: this.embeddingsInitializer,
      regularizer: this.embeddingsRegularizer,
    }];
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return [...inputShapes[0]!, this.outputDim];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx?: CallContext): tf.Tensor {
    const x = inputs[0]!;
    const ids = tf.reshape(x.dtype === "int32" ? x : tf.cast(x, "int32"), [-1]);
    const squares = ctx?.training ? ctx.sparseGradSquares : undefined;
    const flat = squares ? this.#gatherNotingSquares(weights[0]!, ids, squares) : tf.gather(weights[0]!, ids);
    return tf.reshape(flat, [...x.shape, this.outputDim]);
  }

  /**
   * `gather` whose gradient is the usual per-id sum of the output rows' gradients, and which also
   * records, for the ids looked up, the per-id sum of their squares: Keras's TensorFlow optimizers
   * square an Embedding's gradient slice by slice (`ops.square` of IndexedSlices) before the
   * duplicates are summed. The sums are over the looked-up rows only (`[unique ids, outputDim]`), so
   * they grow with the batch, not with `inputDim`; each row's slices are added in the same order as
   * in the gradient's segment sum.
   */
  #gatherNotingSquares(
    table: tf.Tensor,
    ids: tf.Tensor,
    squares: Map<string, SparseSquaresPart[]>,
  ): tf.Tensor {
    const inputDim = this.inputDim;
    const path = `${this.name}/embeddings`;
    const forward = (t: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
      // The ids are saved: intermediates of the forward pass are gone when the gradient runs.
      save([ids]);
      return {
        value: tf.gather(t, ids),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const grad = dy as tf.Tensor;
          const at = saved[0] as tf.Tensor1D;
          const { rows, segments } = lookedUpRows(at.dataSync() as Int32Array, inputDim);
          const sum = rows.length === 0
            ? tf.zeros([0, grad.shape[grad.shape.length - 1]!])
            : tf.unsortedSegmentSum(tf.square(grad), tf.tensor1d(segments, "int32"), rows.length);
          const parts = squares.get(path) ?? [];
          parts.push({ rows, tensor: tf.keep(sum) });
          squares.set(path, parts);
          return tf.unsortedSegmentSum(grad, at, inputDim);
        },
      };
    };
    return tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0])(table);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      input_dim: this.inputDim,
      output_dim: this.outputDim,
      embeddings_initializer: initializerConfig(this.embeddingsInitializer),
      embeddings_regularizer: this.embeddingsRegularizer?.toConfig() ?? null,
      activity_regularizer: null,
      embeddings_constraint: null,
      mask_zero: false,
      quantization_config: null,
    };
  }
}

/**
 * The distinct ids of `ids` within `[0, inputDim)`, ascending, and for each id its index among them
 * (-1 for an id outside the table: a segment sum drops it, as the gradient's does).
 */
export function lookedUpRows(ids: Int32Array, inputDim: number): { rows: Int32Array; segments: Int32Array } {
  const rows = ascendingUnique(ids.filter((id) => id >= 0 && id < inputDim));
  const index = new Map<number, number>();
  rows.forEach((row, j) => index.set(row, j));
  const segments = Int32Array.from(ids, (id) => index.get(id) ?? -1);
  return { rows, segments };
}
