/**
 * `MultiHeadAttention` (Vaswani et al.) on `[steps, features]` inputs, as Keras 3 computes it:
 * per head, `softmax(q·kᵀ / sqrt(keyDim))·v` with `q`, `k`, `v` from learned projections of the query,
 * key and value, and the heads projected back to the query's feature size (or `outputShape`).
 * Called on `[query, value]` or `[query, value, key]` (key defaults to value). Attention runs over
 * the steps axis, per sample. Weights, in Keras order and groups: `query_dense`, `key_dense`,
 * `value_dense` (kernel `[features, heads, dim]`, bias `[heads, dim]`), `output_dense` (kernel
 * `[heads, valueDim, out]`, bias `[out]`).
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import type { Regularizer } from "../regularizers.ts";
import { formatShape, Layer, type LayerOptions, type Shape, type WeightSpec } from "./layer.ts";

export interface MultiHeadAttentionOptions extends LayerOptions {
  numHeads: number;
  keyDim: number;
  /** @default keyDim */
  valueDim?: number | null;
  /** Attention dropout; only 0 is supported. @default 0 */
  dropout?: number;
  /** @default true */
  useBias?: boolean;
  /** Size of the last output axis. @default the query's feature size */
  outputShape?: number | null;
  /** @default "glorot_uniform" */
  kernelInitializer?: string;
  /** @default "zeros" */
  biasInitializer?: string;
  kernelRegularizer?: Regularizer | null;
  biasRegularizer?: Regularizer | null;
}

const PROJECTIONS = [
  ["query", "query_dense"],
  ["key", "key_dense"],
  ["value", "value_dense"],
  ["attention_output", "output_dense"],
] as const;

export class MultiHeadAttention extends Layer {
  readonly className = "MultiHeadAttention";
  override readonly inputsAsArguments = true;
  readonly numHeads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly useBias: boolean;
  readonly outputShape: number | null;
  readonly kernelInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(opts: MultiHeadAttentionOptions) {
    super(opts);
    for (const key of ["numHeads", "keyDim"] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] <= 0) {
        throw new RangeError(
          `Cannot create a MultiHeadAttention layer as ${key} must be a positive integer: received ${key}=${
            opts[key]
          }`,
        );
      }
    }
    if ((opts.dropout ?? 0) !== 0) {
      throw new RangeError(
        `Cannot create a MultiHeadAttention layer with dropout=${opts.dropout}: Shoal's attention has no ` +
          "dropout yet; use dropout=0 and a Dropout layer after it",
      );
    }
    this.numHeads = opts.numHeads;
    this.keyDim = opts.keyDim;
    this.valueDim = opts.valueDim ?? opts.keyDim;
    this.useBias = opts.useBias ?? true;
    this.outputShape = opts.outputShape ?? null;
    this.kernelInitializer = resolveInitializer(opts.kernelInitializer ?? "glorot_uniform");
    this.biasInitializer = resolveInitializer(opts.biasInitializer ?? "zeros");
    this.kernelRegularizer = opts.kernelRegularizer ?? null;
    this.biasRegularizer = opts.biasRegularizer ?? null;
  }

  override checkInputs(inputShapes: Shape[]): void {
    if (inputShapes.length < 2 || inputShapes.length > 3) {
      throw new RangeError(
        `Layer "${this.name}" (MultiHeadAttention) takes [query, value] or [query, value, key]: received ` +
          `${inputShapes.length} input(s). Call it as layer.apply([x, x]) for self-attention`,
      );
    }
    const [query, value, key = value] = inputShapes as [Shape, Shape, Shape?];
    if (![query, value, key].every((s) => s!.length === 2)) {
      throw new RangeError(
        `Layer "${this.name}" (MultiHeadAttention) takes inputs of shape [batch, steps, features]: received ` +
          `${inputShapes.map(formatShape).join(", ")}`,
      );
    }
    if (key![0] !== value[0]) {
      throw new RangeError(
        `Layer "${this.name}" (MultiHeadAttention) needs key and value with the same number of steps: ` +
          `received key ${formatShape(key!)} and value ${formatShape(value)}`,
      );
    }
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const [query, value, key = value] = inputShapes as [Shape, Shape, Shape?];
    const h = this.numHeads;
    const out = this.outputShape ?? query[1]!;
    const kernels: number[][] = [
      [query[1]!, h, this.keyDim],
      [key![1]!, h, this.keyDim],
      [value[1]!, h, this.valueDim],
      [h, this.valueDim, out],
    ];
    const biases = [[h, this.keyDim], [h, this.keyDim], [h, this.valueDim], [out]];
    return PROJECTIONS.flatMap(([name, group], i) => {
      const specs: WeightSpec[] = [{
        name: `${name}/kernel`,
        shape: kernels[i]!,
        trainable: true,
        initializer: this.kernelInitializer,
        regularizer: this.kernelRegularizer,
        group,
      }];
      if (this.useBias) {
        specs.push({
          name: `${name}/bias`,
          shape: biases[i]!,
          trainable: true,
          initializer: this.biasInitializer,
          regularizer: this.biasRegularizer,
          group,
        });
      }
      return specs;
    });
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const query = inputShapes[0]!;
    return [query[0]!, this.outputShape ?? query[1]!];
  }

  /** `x [batch, steps, features]` times a `[features, heads, dim]` kernel: `[batch, heads, steps, dim]`. */
  private project(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, dim: number): tf.Tensor {
    const [b, steps, features] = x.shape as [number, number, number];
    const width = this.numHeads * dim;
    const flat = tf.reshape(x, [b * steps, features]) as tf.Tensor2D;
    const k = tf.reshape(kernel, [features, width]) as tf.Tensor2D;
    const y = bias ? tf.fused.matMul({ a: flat, b: k, bias: tf.reshape(bias, [width]) }) : tf.matMul(flat, k);
    return tf.transpose(tf.reshape(y, [b, steps, this.numHeads, dim]), [0, 2, 1, 3]);
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    const [query, value, key = value] = inputs as [tf.Tensor, tf.Tensor, tf.Tensor?];
    const per = this.useBias ? 2 : 1;
    const w = (i: number) => [weights[i * per]!, this.useBias ? weights[i * per + 1] : undefined] as const;
    const q = tf.mul(this.project(query, ...w(0), this.keyDim), 1 / Math.sqrt(this.keyDim));
    const k = this.project(key!, ...w(1), this.keyDim);
    const v = this.project(value!, ...w(2), this.valueDim);
    const scores = tf.softmax(tf.matMul(q, k, false, true));
    const heads = tf.transpose(tf.matMul(scores, v), [0, 2, 1, 3]); // [batch, steps, heads, valueDim]
    const [b, steps] = query.shape as [number, number];
    const [outKernel, outBias] = w(3);
    const out = outKernel.shape[2]!;
    const flat = tf.reshape(heads, [b * steps, this.numHeads * this.valueDim]) as tf.Tensor2D;
    const k2 = tf.reshape(outKernel, [this.numHeads * this.valueDim, out]) as tf.Tensor2D;
    const y = outBias ? tf.fused.matMul({ a: flat, b: k2, bias: outBias }) : tf.matMul(flat, k2);
    return tf.reshape(y, [b, steps, out]);
  }

  override buildConfig(): Record<string, unknown> {
    const [query, value, key] = this.builtInputShapes;
    const shapes: Record<string, unknown> = {
      query_shape: [null, ...query!],
      value_shape: [null, ...value!],
    };
    if (key) shapes.key_shape = [null, ...key];
    return { shapes_dict: shapes };
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      num_heads: this.numHeads,
      key_dim: this.keyDim,
      value_dim: this.valueDim,
      dropout: 0,
      use_bias: this.useBias,
      use_gate: false,
      output_shape: this.outputShape,
      attention_axes: [1],
      sliding_window: null,
      kernel_initializer: initializerConfig(this.kernelInitializer),
      bias_initializer: initializerConfig(this.biasInitializer),
      kernel_regularizer: this.kernelRegularizer?.toConfig() ?? null,
      bias_regularizer: this.biasRegularizer?.toConfig() ?? null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
      seed: null,
    };
  }
}
