/**
 * A model's topology and weights: the layers in Keras order, the graph of calls between them, and the
 * weights as two flat Float32Arrays in a fixed layout — `params` (trainable, what gradients and the
 * optimizer see) and `state` (non-trainable, e.g. BatchNorm moving statistics). Workers rebuild the same
 * Network from its Keras 3 config and run {@link Network.forward} with weights they are sent.
 */
import { tf } from "./tf.ts";
import { initialize } from "./initializers.ts";
import { Rng } from "./random.ts";
import type { Regularizer } from "./regularizers.ts";
import {
  type CallContext,
  formatShape,
  Input,
  InputLayer,
  type Layer,
  type Node,
  type Shape,
  SymbolicTensor,
} from "./layers/mod.ts";
import { type BatchMoments, isBatchStateful } from "./layers/layer.ts";
import { layerFromConfig, snakeCase } from "./serialization.ts";

/** Where one weight lives in the flat arrays. */
export interface LayoutEntry {
  /** Keras path `dense/kernel`. */
  path: string;
  layer: string;
  name: string;
  shape: number[];
  offset: number;
  size: number;
  trainable: boolean;
  regularizer: Regularizer | null;
}

/** Raised when two sides disagree about a model's weights (a worker, a checkpoint). */
export class ModelMismatchError extends Error {
  constructor(message: string, readonly weight: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelMismatchError";
  }
}

type Config = Record<string, unknown>;

export class Network {
  readonly name: string;
  readonly kind: "Sequential" | "Functional";
  readonly layers: Layer[];
  readonly inputs: SymbolicTensor[];
  readonly outputs: SymbolicTensor[];
  /** Nodes in execution order. */
  readonly nodes: Node[];
  readonly paramLayout: LayoutEntry[];
  readonly stateLayout: LayoutEntry[];
  params: Float32Array;
  state: Float32Array;

  constructor(opts: {
    inputs: SymbolicTensor[];
    outputs: SymbolicTensor[];
    name?: string;
    kind?: "Sequential" | "Functional";
    seed?: number;
  }) {
    this.kind = opts.kind ?? "Functional";
    this.name = opts.name ?? (this.kind === "Sequential" ? "sequential" : "functional");
    this.inputs = opts.inputs;
    this.outputs = opts.outputs;
    this.nodes = executionOrder(opts.inputs, opts.outputs);
    this.layers = [];
    for (const n of this.nodes) if (!this.layers.includes(n.layer)) this.layers.push(n.layer);
    assignNames(this.layers);
    [this.paramLayout, this.stateLayout] = layout(this.layers);
    this.params = new Float32Array(total(this.paramLayout));
    this.state = new Float32Array(total(this.stateLayout));
    this.initialize(opts.seed ?? 0);
  }

  /** Draws fresh initial weights from `seed`. */
  initialize(seed: number): void {
    const rng = new Rng(seed, 0x5eed);
    for (const layer of this.layers) {
      for (const spec of layer.weightSpecs) {
        const entry = this.entry(`${layer.name}/${spec.name}`);
        // A frozen layer's weights live in `state` even when the weight itself is trainable.
        const target = entry.trainable ? this.params : this.state;
        target.set(initialize(spec.initializer, spec.shape, rng), entry.offset);
      }
    }
  }

  private entry(path: string): LayoutEntry {
    const e = this.paramLayout.find((x) => x.path === path) ?? this.stateLayout.find((x) => x.path === path);
    if (!e) throw new Error(`No weight named ${path}`);
    return e;
  }

  /**
   * True when the slices of a training step must exchange partial results while they compute (a
   * trainable BatchNormalization normalizes over the whole batch): see `SliceExchange`.
   */
  get exchangesBetweenSlices(): boolean {
    return this.layers.some((l) => isBatchStateful(l) && l.exchangesBetweenSlices);
  }

  /**
   * Hands each layer's whole-batch statistics of a step to the layer, which updates its
   * non-trainable weights in {@link state} (BatchNormalization's moving averages).
   */
  updateStateFromBatch(stats: readonly (BatchMoments & { layer: string })[]): void {
    for (const stat of stats) {
      const layer = this.layers.find((l) => l.name === stat.layer);
      if (!layer || !isBatchStateful(layer)) {
        throw new ModelMismatchError(
          `Cannot update the state of layer "${stat.layer}" from batch statistics as the model has no such ` +
            "layer that keeps batch statistics: the statistics come from another model",
          stat.layer,
        );
      }
      const weights = new Map(
        this.stateLayout.filter((e) => e.layer === layer.name)
          .map((e) => [e.name, this.state.subarray(e.offset, e.offset + e.size)]),
      );
      layer.updateState(weights, stat);
    }
  }

  /** Per-sample input shapes. */
  get inputShapes(): Shape[] {
    return this.inputs.map((t) => t.shape);
  }

  /** Per-sample output shapes. */
  get outputShapes(): Shape[] {
    return this.outputs.map((t) => t.shape);
  }

  /** All weights in Keras `get_weights()` order (per layer, in its declared order), as copies. */
  getWeights(): Float32Array[] {
    return this.weightEntries().map((e) =>
      (e.trainable ? this.params : this.state).slice(e.offset, e.offset + e.size)
    );
  }

  /** Replaces all weights; sizes must match {@link getWeights}. */
  setWeights(weights: readonly Float32Array[]): void {
    const entries = this.weightEntries();
    if (weights.length !== entries.length) {
      throw new ModelMismatchError(
        `Cannot set weights as the model has ${entries.length} weights: received ${weights.length}`,
        entries[Math.min(weights.length, entries.length - 1)]?.path ?? "",
      );
    }
    entries.forEach((e, i) => {
      const w = weights[i]!;
      if (w.length !== e.size) {
        throw new ModelMismatchError(
          `Cannot set weight ${e.path} as it has shape [${e.shape}] (${e.size} values): received ${w.length} values`,
          e.path,
        );
      }
      (e.trainable ? this.params : this.state).set(w, e.offset);
    });
  }

  /** Layout entries in Keras weight order. */
  weightEntries(): LayoutEntry[] {
    const out: LayoutEntry[] = [];
    for (const layer of this.layers) {
      for (const spec of layer.weightSpecs) out.push(this.entry(`${layer.name}/${spec.name}`));
    }
    return out;
  }

  /** Named copies of all weights (`dense/kernel`), for histograms and inspection. */
  namedWeights(): { name: string; data: Float32Array }[] {
    return this.weightEntries().map((e) => ({
      name: e.path,
      data: (e.trainable ? this.params : this.state).subarray(e.offset, e.offset + e.size),
    }));
  }

  /** Number of scalars in all weights. */
  countParams(): number {
    return this.params.length + this.state.length;
  }

  /**
   * Runs the model. `params` and `state` are tensors for each layout entry, in layout order (so the
   * caller can differentiate with respect to `params`). Returns one tensor per model output.
   */
  forward(params: tf.Tensor[], state: tf.Tensor[], inputs: tf.Tensor[], ctx: CallContext): tf.Tensor[] {
    const byPath = new Map<string, tf.Tensor>();
    this.paramLayout.forEach((e, i) => byPath.set(e.path, params[i]!));
    this.stateLayout.forEach((e, i) => byPath.set(e.path, state[i]!));
    const values = new Map<SymbolicTensor, tf.Tensor>();
    this.inputs.forEach((t, i) => values.set(t, inputs[i]!));
    for (const node of this.nodes) {
      if (node.layer instanceof InputLayer) continue;
      const xs = node.inputs.map((t) => values.get(t)!);
      const ws = node.layer.weightSpecs.map((s) => byPath.get(`${node.layer.name}/${s.name}`)!);
      const ys = node.layer.callAll(xs, ws, ctx);
      node.outputs.forEach((t, i) => values.set(t, ys[i]!));
    }
    return this.outputs.map((t) => values.get(t)!);
  }

  /** Checks per-sample shapes of data against the model inputs, with Keras's message. */
  checkInputShapes(shapes: Shape[]): void {
    if (shapes.length !== this.inputs.length) {
      throw new RangeError(
        `Model "${this.name}" expects ${this.inputs.length} input(s) but received ${shapes.length}: pass ` +
          (this.inputs.length > 1 ? `a list [${this.inputLayerNames().join(", ")}]` : "a single tensor"),
      );
    }
    shapes.forEach((shape, i) => {
      const expected = this.inputs[i]!.shape;
      if (shape.length === expected.length && shape.every((d, k) => d === expected[k])) return;
      const consumer = this.nodes.find((n) => n.inputs.includes(this.inputs[i]!))?.layer;
      const name = consumer?.name ?? this.inputLayerNames()[i];
      const last = expected[expected.length - 1];
      const fix = expected.length === 1 && shape.length > 1
        ? ` Flatten the data first (x.reshape([-1, ${last}])) or start the model with a Flatten layer ` +
          `(new layers.Flatten({ inputShape: [${shape.join(", ")}] })).`
        : ` Reshape the data to [n, ${expected.join(", ")}] or build the model for inputShape [${
          shape.join(", ")
        }].`;
      throw new RangeError(
        `Input ${i} of layer "${name}" is incompatible with the layer: expected axis -1 of input shape to have ` +
          `value ${last}, but received input with shape ${formatShape(shape)}.${fix}`,
      );
    });
  }

  inputLayerNames(): string[] {
    return this.inputs.map((t) => t.node.layer.name!);
  }

  /** The Keras 3 serialized model (`config.json` of a `.keras` archive). */
  toConfig(): Config {
    if (this.kind === "Sequential") {
      const inputLayer = this.layers[0] as InputLayer;
      return {
        module: "keras",
        class_name: "Sequential",
        config: {
          name: this.name,
          trainable: true,
          dtype: {
            module: "keras",
            class_name: "DTypePolicy",
            config: { name: "float32" },
            registered_name: null,
          },
          layers: this.layers.map((l) => layerEntry(l, false)),
        },
        registered_name: null,
        build_config: { input_shape: [null, ...inputLayer.shape] },
        compile_config: null,
      };
    }
    const ref = (t: SymbolicTensor) => [t.node.layer.name, t.node.index, t.index];
    return {
      module: "keras.src.models.functional",
      class_name: "Functional",
      config: {
        name: this.name,
        trainable: true,
        layers: this.layers.map((l) => layerEntry(l, true)),
        input_layers: this.inputs.length === 1 ? ref(this.inputs[0]!) : this.inputs.map(ref),
        output_layers: this.outputs.length === 1 ? ref(this.outputs[0]!) : this.outputs.map(ref),
      },
      registered_name: "Functional",
      build_config: { input_shape: null },
      compile_config: null,
    };
  }

  /** Rebuilds a network from a Keras 3 model config (Sequential or Functional). */
  static fromConfig(config: unknown, seed = 0): Network {
    const c = config as { class_name?: string; config?: Config };
    if (!c || typeof c !== "object" || !c.config) {
      throw new TypeError("Cannot read the model config as it is not a Keras 3 model config object");
    }
    if (c.class_name === "Sequential") return sequentialFromConfig(c.config, seed);
    if (c.class_name === "Functional" || c.class_name === "Model") {
      return functionalFromConfig(c.config, seed);
    }
    throw new TypeError(`Unknown model class: '${c.class_name}'. Use Sequential or Functional`);
  }
}

function layerEntry(layer: Layer, functional: boolean): Config {
  const entry: Config = {
    module: "keras.layers",
    class_name: layer.className,
    config: layer.getConfig(),
    registered_name: null,
  };
  if (layer instanceof InputLayer) {
    if (functional) Object.assign(entry, { name: layer.name, inbound_nodes: [] });
    return entry;
  }
  entry.build_config = layer.buildConfig();
  if (functional) {
    entry.name = layer.name;
    entry.inbound_nodes = layer.inboundNodes.map((node) => {
      const tensors = node.inputs.map((t) => ({
        class_name: "__keras_tensor__",
        config: {
          shape: [null, ...t.shape],
          dtype: "float32",
          keras_history: [t.node.layer.name, t.node.index, t.index],
        },
      }));
      return { args: tensors.length === 1 || layer.inputsAsArguments ? tensors : [tensors], kwargs: {} };
    });
  }
  return entry;
}

function sequentialFromConfig(c: Config, seed: number): Network {
  const entries = (c.layers ?? []) as { class_name: string; config: Config }[];
  const layers = entries.map(layerFromConfig);
  let input: SymbolicTensor;
  let rest = layers;
  if (layers[0] instanceof InputLayer) {
    input = layers[0].inboundNodes[0]?.output ?? inputFor(layers[0]);
    rest = layers.slice(1);
  } else {
    // Without an InputLayer the first layer carries the input shape (Keras 2 `batch_input_shape`, Keras 3
    // `build_config`), or the model does (`build_input_shape`).
    const first = entries[0] as { config?: Config; build_config?: { input_shape?: unknown } } | undefined;
    const shape = (first?.config?.batch_input_shape ?? first?.config?.batch_shape ??
      first?.build_config?.input_shape ??
      (c as { build_input_shape?: number[] }).build_input_shape) as (number | null)[] | undefined;
    if (!shape) throw new TypeError("Cannot rebuild the Sequential model as its config has no input shape");
    input = new Input({ shape: shape.slice(1) as number[] });
  }
  let x = input;
  for (const l of rest) x = applyInSequence(l, x);
  return new Network({
    inputs: [input],
    outputs: [x],
    name: String(c.name ?? "sequential"),
    kind: "Sequential",
    seed,
  });
}

/**
 * Calls the next layer of a Sequential model on `x`. Keras's error for a layer with several outputs
 * (a recurrent layer with `returnState`), which only the Functional API can wire.
 */
export function applyInSequence(layer: Layer, x: SymbolicTensor): SymbolicTensor {
  const outputs = layer.applyAll(x);
  if (outputs.length !== 1) {
    throw new TypeError(
      `Cannot add layer "${
        layer.name ?? layer.className
      }" to a Sequential model as it has ${outputs.length} ` +
        "outputs (returnState=true): all layers in a Sequential model should have a single output tensor. " +
        "Use the Functional API (new Model({ inputs, outputs })) for multi-output layers",
    );
  }
  return outputs[0]!;
}

function inputFor(layer: InputLayer): SymbolicTensor {
  const node: Node = { layer, inputs: [], index: 0, output: undefined!, outputs: [] };
  node.output = new SymbolicTensor(layer.shape, node);
  node.outputs = [node.output];
  layer.inboundNodes.push(node);
  return node.output;
}

function functionalFromConfig(c: Config, seed: number): Network {
  type Entry = {
    class_name: string;
    config: Config;
    name?: string;
    inbound_nodes?: { args: unknown[]; kwargs?: Config }[];
  };
  const entries = (c.layers ?? []) as Entry[];
  const byName = new Map<string, Layer>();
  /** Per layer, per node, every output of the call. */
  const outputsOf = new Map<string, SymbolicTensor[][]>();
  const pending = [...entries];
  // Layers may be listed before their inputs' producers only in odd configs; resolve in passes.
  for (let guard = 0; pending.length > 0 && guard <= entries.length; guard++) {
    for (let i = 0; i < pending.length; i++) {
      const e = pending[i]!;
      const name = String(e.name ?? e.config.name);
      const nodes = e.inbound_nodes ?? [];
      refuseTensorKeywords(name, nodes);
      const resolved = nodes.map((n) =>
        historyRefs(n.args).map(([l, node, index]) => outputsOf.get(l)?.[node]?.[index])
      );
      if (resolved.some((r) => r.some((t) => t === undefined))) continue;
      const layer = byName.get(name) ?? layerFromConfig(e);
      if (!layer.name) layer.name = name;
      byName.set(name, layer);
      if (layer instanceof InputLayer) outputsOf.set(name, [[inputFor(layer)]]);
      else {
        outputsOf.set(
          name,
          resolved.map((ts) => layer.applyAll(ts.length === 1 ? ts[0]! : ts as SymbolicTensor[])),
        );
      }
      pending.splice(i--, 1);
    }
  }
  if (pending.length > 0) {
    throw new TypeError(
      `Cannot rebuild the model as layer(s) ${
        pending.map((p) => p.name).join(", ")
      } have inputs that are never produced`,
    );
  }
  const refs = (v: unknown) => {
    const list = (Array.isArray(v) && Array.isArray(v[0]) ? v : [v]) as [string, number, number][];
    return list.map(([l, node, index]) => outputsOf.get(l)![node]![index ?? 0]!);
  };
  return new Network({
    inputs: refs(c.input_layers),
    outputs: refs(c.output_layers),
    name: String(c.name ?? "functional"),
    kind: "Functional",
    seed,
  });
}

/**
 * Throws for a call that passes tensors as keyword arguments (a recurrent layer's `initial_state`, an
 * attention `attention_mask`): Shoal layers take tensors as inputs only, and ignoring one would run a
 * different model.
 */
function refuseTensorKeywords(layer: string, nodes: { kwargs?: Config }[]): void {
  for (const node of nodes) {
    for (const [key, value] of Object.entries(node.kwargs ?? {})) {
      if (historyRefs(value).length === 0) continue;
      throw new TypeError(
        `Cannot rebuild the model as layer "${layer}" is called with a tensor as its ${key} argument, ` +
          `which Shoal does not support yet: build the model without ${key}`,
      );
    }
  }
}

/** Every `[layer, node index, tensor index]` that `args` refers to. */
function historyRefs(args: unknown): [string, number, number][] {
  const out: [string, number, number][] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object" && (v as Config).class_name === "__keras_tensor__") {
      const h = ((v as Config).config as { keras_history: [string, number, number] }).keras_history;
      out.push([h[0], h[1], h[2] ?? 0]);
    }
  };
  walk(args);
  return out;
}

function executionOrder(inputs: SymbolicTensor[], outputs: SymbolicTensor[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const visit = (t: SymbolicTensor, stack: Set<Node>) => {
    const node = t.node;
    if (seen.has(node)) return;
    if (stack.has(node)) throw new TypeError("Cannot build a model from a graph with a cycle");
    if (node.inputs.length === 0 && !inputs.includes(t)) {
      throw new TypeError(
        `Cannot build the model as it depends on input "${
          node.layer.name ?? "input"
        }" that is not in its inputs list`,
      );
    }
    stack.add(node);
    node.inputs.forEach((x) => visit(x, stack));
    stack.delete(node);
    seen.add(node);
    order.push(node);
  };
  // Inputs first, in the order given, as Keras lists them.
  for (const t of inputs) visit(t, new Set());
  for (const t of outputs) visit(t, new Set());
  return order;
}

function assignNames(layers: Layer[]): void {
  const used = new Set(layers.map((l) => l.name).filter((n): n is string => !!n));
  const counters = new Map<string, number>();
  for (const layer of layers) {
    if (layer.name) continue;
    const base = snakeCase(layer.className);
    let n = counters.get(base) ?? 0;
    let name = n === 0 ? base : `${base}_${n}`;
    while (used.has(name)) name = `${base}_${++n}`;
    counters.set(base, n + 1);
    used.add(name);
    layer.name = name;
  }
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.name!)) {
      throw new TypeError(
        `Cannot build the model as the layer name "${l.name}" is used twice: names must be unique`,
      );
    }
    seen.add(l.name!);
  }
}

function layout(layers: Layer[]): [LayoutEntry[], LayoutEntry[]] {
  const params: LayoutEntry[] = [];
  const state: LayoutEntry[] = [];
  for (const layer of layers) {
    for (const spec of layer.weightSpecs) {
      const trainable = spec.trainable && layer.trainable;
      const list = trainable ? params : state;
      const size = spec.shape.reduce((a, b) => a * b, 1);
      list.push({
        path: `${layer.name}/${spec.name}`,
        layer: layer.name!,
        name: spec.name,
        shape: [...spec.shape],
        offset: total(list),
        size,
        trainable,
        regularizer: spec.regularizer,
      });
    }
  }
  return [params, state];
}

function total(entries: LayoutEntry[]): number {
  const last = entries[entries.length - 1];
  return last ? last.offset + last.size : 0;
}
