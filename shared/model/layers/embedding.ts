/**
 * `Embedding`: maps integer token ids `[steps]` to rows of a trainable `embeddings` matrix
 * `[inputDim, outputDim]`, giving `[steps, outputDim]`. Ids arrive as float32 (the data path is
 * float32; ids are exact up to 2^24) and are cast to int32. An id outside `[0, inputDim)` is an error
 * in Keras on CPU; here it reads as zeros (TensorFlow.js `gather`), so check the data's range.
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import { Layer, type LayerOptions, type Shape, type WeightSpec } from "./layer.ts";

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

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    const ids = x.dtype === "int32" ? x : tf.cast(x, "int32");
    const flat = tf.gather(weights[0]!, tf.reshape(ids, [-1]));
    return tf.reshape(flat, [...x.shape, this.outputDim]);
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
