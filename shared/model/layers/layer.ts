/**
 * The layer protocol. A layer holds no tensors: it declares its weights ({@link WeightSpec}) when built
 * from input shapes, and computes its output from inputs and weight tensors it is handed. The weights
 * themselves live in the model's flat parameter arrays, so a worker can run any layer from config alone.
 */
import { tf } from "../tf.ts";
import { initializerConfig, type InitializerName, resolveInitializer } from "../initializers.ts";
import { type ActivationName, applyActivation, resolveActivation } from "../activations.ts";
import type { Regularizer } from "../regularizers.ts";

/** A per-sample shape (no batch dimension). */
export type Shape = readonly number[];

/** One weight of a layer. */
export interface WeightSpec {
  /** Keras variable name: `kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`. */
  name: string;
  shape: Shape;
  /** Trainable weights get gradients; the others (BatchNorm moving statistics) are updated by the layer. */
  trainable: boolean;
  initializer: InitializerName;
  regularizer: Regularizer | null;
  /**
   * Where Keras stores the variable, relative to the layer's own group in a weights file, for layers
   * built from inner layers: `cell` (LSTM), `forward_layer/cell` (Bidirectional), `query_dense`
   * (MultiHeadAttention). Absent: the layer's own group.
   */
  group?: string;
}

/** Batch statistics a {@link BatchStatefulLayer} observed on its slice in a training step. */
export interface BatchStats {
  layer: string;
  /** Per-channel mean over the slice. */
  mean: tf.Tensor;
  /** Per-channel biased variance over the slice. */
  variance: tf.Tensor;
}

/** One layer's batch statistics over the whole batch of a step (every slice's combined). */
export interface BatchMoments {
  /** Per-channel mean. */
  mean: Float32Array;
  /** Per-channel biased variance. */
  variance: Float32Array;
}

/**
 * A layer whose non-trainable weights follow the statistics of the batches it trains on, updated by
 * the layer itself (Keras BatchNormalization's moving mean and variance). In training its `call`
 * reports its slice's statistics in `ctx.batchStats`; where the statistics of every slice meet (the
 * coordinator), the network hands the whole batch's to {@link updateState}.
 */
export interface BatchStatefulLayer {
  /**
   * True when, in training, the layer computes over the whole batch, so that the slices of a step
   * split over processes exchange partial results ({@link SliceExchange}).
   */
  readonly exchangesBetweenSlices: boolean;
  /** Folds the whole batch's statistics into `weights`: the layer's non-trainable weights by name, in place. */
  updateState(weights: ReadonlyMap<string, Float32Array>, stats: BatchMoments): void;
}

/** Whether a layer updates its own state from batch statistics ({@link BatchStatefulLayer}). */
export function isBatchStateful(layer: Layer): layer is Layer & BatchStatefulLayer {
  return typeof (layer as Partial<BatchStatefulLayer>).updateState === "function";
}

/**
 * The squares one call of a sparse-gradient layer recorded: `rows` (ascending, each once) and
 * `tensor` (`[rows.length, rowSize]`), each row's sum of its slices' squares.
 */
export interface SparseSquaresPart {
  rows: Int32Array;
  tensor: tf.Tensor;
}

/** Everything a layer call may need besides inputs and weights. */
export interface CallContext {
  training: boolean;
  /** Base seed of the run; dropout masks derive from (seed, step, layer, global row). */
  seed: number;
  step: number;
  /** Index in the global batch of this slice's first row. */
  rowOffset: number;
  /** Filled in training mode by {@link BatchStatefulLayer}s (BatchNormalization). */
  batchStats: BatchStats[];
  /** Filled by layers ending in softmax/sigmoid: their logits, for stable cross-entropy. */
  logits: Map<string, { tensor: tf.Tensor; activation: "softmax" | "sigmoid" }>;
  /**
   * When given in training mode, layers whose gradient is a sum of per-row slices (Embedding: one
   * slice per looked-up id, Keras's IndexedSlices) append here, keyed by weight path
   * (`embedding/embeddings`), one part per call as the gradient is computed: the rows it looked up
   * and the per-row sum of their slices' squares.
   */
  sparseGradSquares?: Map<string, SparseSquaresPart[]>;
  /**
   * The other slices of this training step, for layers whose result depends on the whole batch
   * (BatchNormalization). Absent: this slice is the whole batch.
   */
  exchange?: SliceExchange;
}

/**
 * Shares partial results among the slices of one training step, so that a layer can compute over
 * the whole batch although each process holds a slice of it. Every slice calls {@link gather} the
 * same number of times in the same order (the model is the same everywhere).
 */
export interface SliceExchange {
  /** Every slice's `part`, this slice's own included, in slice order. All parts have the same length. */
  gather(part: Float32Array): Float32Array[];
}

/** The exchange of a batch computed in one piece. */
export const WHOLE_BATCH: SliceExchange = { gather: (part) => [part] };

/** Keras's float32 dtype policy, as serialized in configs. */
export const FLOAT32_POLICY = {
  module: "keras",
  class_name: "DTypePolicy",
  config: { name: "float32" },
  registered_name: null,
} as const;

/** Options every layer accepts. */
export interface LayerOptions {
  name?: string;
  /** Per-sample input shape, for the first layer of a Sequential model (Keras `input_shape`). */
  inputShape?: number[];
  trainable?: boolean;
}

/** Base class of all layers. */
export abstract class Layer {
  /** Keras class name (`Dense`). */
  abstract readonly className: string;
  /** The layer's name; assigned by the model when not given (`dense`, `dense_1`, …). */
  name: string | undefined;
  readonly inputShape: Shape | undefined;
  trainable: boolean;
  /** Set by {@link build}. */
  weightSpecs: WeightSpec[] = [];
  built = false;
  /** Input shapes seen at build time, for `build_config`. */
  builtInputShapes: Shape[] = [];
  /** Nodes created by calling this layer on symbolic tensors (the Functional API). */
  readonly inboundNodes: Node[] = [];

  constructor(opts: LayerOptions = {}) {
    this.name = opts.name;
    this.inputShape = opts.inputShape ? [...opts.inputShape] : undefined;
    this.trainable = opts.trainable ?? true;
  }

  /** Declares weights for these input shapes. Layers with weights override {@link makeWeights}. */
  build(inputShapes: Shape[]): void {
    this.checkInputs(inputShapes);
    this.weightSpecs = this.makeWeights(inputShapes);
    this.builtInputShapes = inputShapes.map((s) => [...s]);
    this.built = true;
  }

  /** Throws a Keras-style error when an input shape does not fit this layer. */
  checkInputs(_inputShapes: Shape[]): void {}

  /**
   * Throws Keras's error for a per-sample input `shape` whose rank with the batch axis is not `ndim`;
   * `dims` names the axes (e.g. "batch, steps, channels"), `fix` says what to do.
   */
  protected expectRank(shape: Shape, ndim: number, opts: { dims?: string; fix?: string } = {}): void {
    if (shape.length + 1 === ndim) return;
    throw new RangeError(
      `Input 0 of layer "${this.name}" is incompatible with the layer: expected ndim=${ndim}` +
        `${opts.dims ? ` (${opts.dims})` : ""}, found ndim=${shape.length + 1}. ` +
        `Full shape received: ${formatShape(shape)}${opts.fix ? `. ${opts.fix}` : ""}`,
    );
  }

  protected makeWeights(_inputShapes: Shape[]): WeightSpec[] {
    return [];
  }

  abstract computeOutputShape(inputShapes: Shape[]): Shape;

  /**
   * The shapes of every output of a call, the output first: more than one for a layer that also
   * returns its states (Keras `return_state`).
   */
  computeOutputShapes(inputShapes: Shape[]): Shape[] {
    return [this.computeOutputShape(inputShapes)];
  }

  /** Computes the output; `weights` follow {@link weightSpecs} order. */
  abstract call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor;

  /** Computes every output of a call ({@link computeOutputShapes}), the output first. */
  callAll(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor[] {
    return [this.call(inputs, weights, ctx)];
  }

  /** The layer-specific part of the Keras 3 config (`units`, `activation`, …). */
  protected abstract layerConfig(): Record<string, unknown>;

  /** The Keras 3 `config` dict of this layer. */
  getConfig(): Record<string, unknown> {
    return { name: this.name, trainable: this.trainable, dtype: FLOAT32_POLICY, ...this.layerConfig() };
  }

  /**
   * True when Keras passes this layer's inputs as separate call arguments (`mha(query, value)`)
   * rather than one list (`add([a, b])`); a saved config records its inputs that way.
   */
  readonly inputsAsArguments: boolean = false;

  /** The layer's Keras `build_config`: its input shape(s) with the batch dimension. */
  buildConfig(): Record<string, unknown> {
    const withBatch = this.builtInputShapes.map((s) => [null, ...s]);
    return { input_shape: withBatch.length === 1 ? withBatch[0] : withBatch };
  }

  /** Number of scalars in this layer's weights. */
  countParams(): number {
    return this.weightSpecs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  }

  /** Calls the layer on symbolic tensors (Functional API): `new layers.Dense(8).apply(input)`. */
  apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
    return this.applyAll(inputs)[0]!;
  }

  /** Calls the layer on symbolic tensors and returns every output of the call, the output first. */
  applyAll(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor[] {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    if (list.length === 0) {
      throw new TypeError(`Cannot call layer ${this.className} on an empty list of inputs`);
    }
    const shapes = list.map((t) => t.shape);
    if (!this.built) this.build(shapes);
    else this.checkInputs(shapes);
    const node: Node = {
      layer: this,
      inputs: list,
      index: this.inboundNodes.length,
      output: undefined!,
      outputs: [],
    };
    node.outputs = this.computeOutputShapes(shapes).map((shape, i) => new SymbolicTensor(shape, node, i));
    node.output = node.outputs[0]!;
    this.inboundNodes.push(node);
    return node.outputs;
  }
}

/** One application of a layer to symbolic inputs. */
export interface Node {
  layer: Layer;
  inputs: SymbolicTensor[];
  /** Position of this node in `layer.inboundNodes`. */
  index: number;
  /** The first output of the call. */
  output: SymbolicTensor;
  /** Every output of the call, `output` first (a recurrent layer's states follow with `returnState`). */
  outputs: SymbolicTensor[];
}

/**
 * A symbolic tensor of the Functional API (Keras `KerasTensor`): a shape, the node that makes it, and
 * its position among that node's outputs (Keras's `keras_history` is `[layer, node index, index]`).
 */
export class SymbolicTensor {
  constructor(readonly shape: Shape, readonly node: Node, readonly index = 0) {}
}

/** The weights of a Dense or Conv2D layer: a trainable `kernel` and, when used, a trainable `bias`. */
export function kernelAndBias(
  kernelShape: Shape,
  units: number,
  opts: {
    useBias: boolean;
    kernelInitializer: InitializerName;
    biasInitializer: InitializerName;
    kernelRegularizer: Regularizer | null;
    biasRegularizer: Regularizer | null;
  },
): WeightSpec[] {
  const specs: WeightSpec[] = [{
    name: "kernel",
    shape: kernelShape,
    trainable: true,
    initializer: opts.kernelInitializer,
    regularizer: opts.kernelRegularizer,
  }];
  if (opts.useBias) {
    specs.push({
      name: "bias",
      shape: [units],
      trainable: true,
      initializer: opts.biasInitializer,
      regularizer: opts.biasRegularizer,
    });
  }
  return specs;
}

/** The product of a shape's dimensions. */
export function sizeOf(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Formats a per-sample shape with the batch dimension as Keras prints it: `[null,28,28]`. */
export function formatShape(shape: Shape): string {
  return `[null,${shape.join(",")}]`;
}

/** Options of a layer with a kernel, an optional bias and an activation (Dense, Conv1D, Conv2D). */
export interface KernelLayerOptions extends LayerOptions {
  /** @default "linear" */
  activation?: string | null;
  /** @default true */
  useBias?: boolean;
  /** @default "glorot_uniform" */
  kernelInitializer?: string;
  /** @default "zeros" */
  biasInitializer?: string;
  /** @default null */
  kernelRegularizer?: Regularizer | null;
  /** @default null */
  biasRegularizer?: Regularizer | null;
}

/** A layer with a kernel, an optional bias and an activation: the settings Dense and the convolutions share. */
export abstract class KernelLayer extends Layer {
  readonly activation: ActivationName;
  readonly useBias: boolean;
  readonly kernelInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(opts: KernelLayerOptions) {
    super(opts);
    this.activation = resolveActivation(opts.activation);
    this.useBias = opts.useBias ?? true;
    this.kernelInitializer = resolveInitializer(opts.kernelInitializer ?? "glorot_uniform");
    this.biasInitializer = resolveInitializer(opts.biasInitializer ?? "zeros");
    this.kernelRegularizer = opts.kernelRegularizer ?? null;
    this.biasRegularizer = opts.biasRegularizer ?? null;
  }

  /**
   * `activation(z + bias)`. For a softmax or sigmoid, `z + bias` is kept as the layer's logits (reshaped
   * to `outShape` when given), which the loss pairs with the labels.
   */
  protected biasAndActivation(
    z: tf.Tensor,
    weights: tf.Tensor[],
    ctx: CallContext,
    outShape?: number[],
  ): tf.Tensor {
    const pre = this.useBias ? tf.add(z, weights[1]!) : z;
    if ((this.activation === "softmax" || this.activation === "sigmoid") && this.name) {
      const logits = outShape ? tf.reshape(pre, outShape) : pre;
      ctx.logits.set(this.name, { tensor: logits, activation: this.activation });
    }
    return applyActivation(this.activation, pre);
  }

  /** Keras's config entries of these settings, in its order. */
  protected kernelConfig(): Record<string, unknown> {
    return {
      activation: this.activation,
      use_bias: this.useBias,
      kernel_initializer: initializerConfig(this.kernelInitializer),
      bias_initializer: initializerConfig(this.biasInitializer),
      kernel_regularizer: this.kernelRegularizer?.toConfig() ?? null,
      bias_regularizer: this.biasRegularizer?.toConfig() ?? null,
    };
  }
}
