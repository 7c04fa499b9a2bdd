/**
 * Saving and loading models in Keras 3's formats: the `.keras` archive (config, compile config,
 * weights and optimizer state) and the `.weights.h5` weights file. Files written here load in Keras
 * 3.15, and files Keras wrote load here.
 *
 * Keras addresses variables by position, not by name: each layer's variables sit in the group of
 * `kerasVarGroups(config)` (class-name counters over `config.layers`), and the optimizer's slots follow
 * `model.trainable_variables` (layer order, then each layer's trainable variables). A Functional model's
 * layer order is Keras's `map_graph` order (deepest first, ties by traversal from the outputs), which is
 * not always the order Shoal runs the layers in; {@link kerasLayerOrder} computes it so that Keras
 * assigns every group to the layer it came from.
 *
 * @module
 */
import {
  type KerasVarGroup,
  kerasVarGroups,
  type KerasVarGroupSpec,
  type KerasVariable,
  type KerasWeights,
  readKerasArchive,
  readWeightsH5,
  writeKerasArchive,
  writeWeightsH5,
} from "../shared/io/keras/mod.ts";
import {
  InputLayer,
  type Layer,
  type LayoutEntry,
  lossFromConfig,
  type LossSpec,
  lossToConfig,
  metricFromConfig,
  type MetricSpec,
  metricToConfig,
  ModelMismatchError,
  Network,
  type Optimizer,
  optimizerFromConfig,
  type SymbolicTensor,
} from "../shared/model/mod.ts";
import type { Node } from "../shared/model/layers/mod.ts";
import type { CompileOptions, Model } from "./model.ts";

/** Options of `loadModel` (model.ts). */
export interface LoadModelOptions {
  /** Compile the model from the archive's `compile_config` and restore the optimizer state. @default true */
  compile?: boolean;
  /** The loaded model's seed (shuffling and dropout of later fits). @default a random seed */
  seed?: number;
}

type Config = Record<string, unknown>;

/**
 * Saves the whole model (Keras `model.save`) as a Keras 3 `.keras` archive: topology, compile
 * config, weights and optimizer state. The file is replaced atomically.
 *
 * @throws {RangeError} when `path` does not end in `.keras`.
 */
export async function saveModel(model: Model, path: string): Promise<void> {
  if (!path.endsWith(".keras")) {
    throw new RangeError(
      `Cannot save the model to ${path} as the file name must end in .keras (a Keras 3 archive): ` +
        `use a path such as "model.keras", or saveWeights with a path ending in .weights.h5 to save only the weights`,
    );
  }
  const config = { ...networkConfig(model.network), compile_config: compileConfig(model) };
  await writeKerasArchive(path, { config, weights: modelWeights(model, config) });
}

/**
 * Saves the weights (Keras `model.save_weights`) as a Keras 3 `.weights.h5` file; like Keras, it
 * includes the optimizer state of a compiled model. The file is replaced atomically.
 *
 * @throws {RangeError} when `path` does not end in `.weights.h5`.
 */
export async function saveWeights(model: Model, path: string): Promise<void> {
  if (!path.endsWith(".weights.h5")) {
    throw new RangeError(
      `Cannot save weights to ${path} as the file name must end in .weights.h5 (Keras 3 rule): ` +
        `use a path such as "model.weights.h5", or saveModel with a .keras path to save the whole model`,
    );
  }
  await writeWeightsH5(path, modelWeights(model, networkConfig(model.network)));
}

/**
 * Opens a `.keras` archive for `loadModel` (model.ts): the rebuilt Sequential or Functional network,
 * and `finish`, which, on the model built around that network, sets the weights and (unless
 * `compile: false`) compiles it from the archive's compile config and restores the optimizer's
 * iterations and slots, so training continues where it stopped.
 *
 * @throws {RangeError} when `path` does not end in `.keras`.
 * @throws {KerasFileError} when the archive is missing, truncated or damaged.
 * @throws {ModelMismatchError} when a stored weight does not fit the rebuilt model.
 */
export async function openModelArchive(
  path: string,
  opts: LoadModelOptions = {},
): Promise<{ network: Network; finish: (model: Model) => void }> {
  if (!path.endsWith(".keras")) {
    throw new RangeError(
      `Cannot load a model from ${path} as the file name must end in .keras (a Keras 3 archive written by ` +
        `model.save): for a .weights.h5 file, build the same model and call loadWeights`,
    );
  }
  const archive = await readKerasArchive(path);
  const network = Network.fromConfig(archive.config, opts.seed ?? 0);
  const assignWeights = layerWeightsFrom(network, archive.config, archive.weights, path);
  const compileEntry = (archive.config as Config)["compile_config"];
  const finish = (model: Model) => {
    let restoreOptimizer: (() => void) | null = null;
    if ((opts.compile ?? true) && compileEntry) {
      model.compile(compileOptions(compileEntry as Config, path));
      restoreOptimizer = optimizerStateFrom(model.optimizer, network, archive.config, archive.weights, path);
    }
    assignWeights();
    restoreOptimizer?.();
  };
  return { network, finish };
}

/**
 * Loads weights (Keras `model.load_weights`) from a `.weights.h5` file or a `.keras` archive into a
 * model with the same architecture; a compiled model also gets the stored optimizer state. Everything
 * is checked before anything is assigned: on error the model is unchanged.
 *
 * @throws {RangeError} when `path` ends in neither `.weights.h5` nor `.keras`.
 * @throws {ModelMismatchError} naming the first weight whose shape differs, or a layer the file lacks.
 */
export async function loadWeights(model: Model, path: string): Promise<void> {
  let weights: KerasWeights;
  if (path.endsWith(".weights.h5")) weights = await readWeightsH5(path);
  else if (path.endsWith(".keras")) weights = (await readKerasArchive(path)).weights;
  else {
    throw new RangeError(
      `Cannot load weights from ${path} as the file name must end in .weights.h5 (saveWeights) or .keras (saveModel)`,
    );
  }
  const network = model.network;
  const config = networkConfig(network);
  const assignWeights = layerWeightsFrom(network, config, weights, path);
  const restoreOptimizer = model.compiledLoss === undefined
    ? null
    : optimizerStateFrom(model.optimizer, network, config, weights, path);
  assignWeights();
  restoreOptimizer?.();
}

/**
 * The network's layers in Keras's order: a Sequential model's list as it is; a Functional model's
 * `map_graph` order (keras/src/ops/function.py): by depth from the outputs, deepest first, ties broken
 * by the order a depth-first walk from the outputs first meets each layer.
 */
export function kerasLayerOrder(network: Network): Layer[] {
  if (network.kind === "Sequential") return [...network.layers];
  const finished = new Set<Node>();
  const decreasingDepth: Node[] = [];
  const traversal = new Map<Layer, number>();
  const visit = (tensor: SymbolicTensor): void => {
    const node = tensor.node;
    if (finished.has(node)) return;
    if (!traversal.has(node.layer)) traversal.set(node.layer, traversal.size);
    if (!(node.layer instanceof InputLayer)) node.inputs.forEach(visit);
    finished.add(node);
    decreasingDepth.push(node);
  };
  network.outputs.forEach(visit);
  const inGraph = new Set(decreasingDepth);
  const nodeDepth = new Map<Node, number>();
  const layerDepth = new Map<Layer, number>();
  for (const node of [...decreasingDepth].reverse()) {
    const depth = Math.max(nodeDepth.get(node) ?? 0, layerDepth.get(node.layer) ?? 0);
    layerDepth.set(node.layer, depth);
    nodeDepth.set(node, depth);
    for (const input of node.inputs) {
      if (inGraph.has(input.node)) {
        nodeDepth.set(input.node, Math.max(depth + 1, nodeDepth.get(input.node) ?? 0));
      }
    }
  }
  for (const input of network.inputs) {
    const layer = input.node.layer;
    if (!layerDepth.has(layer)) {
      layerDepth.set(layer, 0);
      traversal.set(layer, -1);
    }
  }
  const depths = [...new Set(layerDepth.values())].sort((a, b) => b - a);
  return depths.flatMap((depth) =>
    [...layerDepth].filter(([, d]) => d === depth).map(([layer]) => layer)
      .sort((a, b) => traversal.get(a)! - traversal.get(b)!)
  );
}

/** The network's Keras 3 config with a Functional model's layers listed in {@link kerasLayerOrder}. */
function networkConfig(network: Network): Config {
  const config = network.toConfig();
  if (network.kind === "Sequential") return config;
  const position = new Map(kerasLayerOrder(network).map((layer, i) => [layer.name!, i]));
  const inner = config["config"] as Config;
  const layers = [...(inner["layers"] as Config[])];
  layers.sort((a, b) => position.get(String(a["name"]))! - position.get(String(b["name"]))!);
  return { ...config, config: { ...inner, layers } };
}

/** Keras's `compile_config` of a compiled model, or null. */
function compileConfig(model: Model): Config | null {
  if (model.compiledLoss === undefined) return null;
  return {
    optimizer: {
      module: "keras.optimizers",
      class_name: model.optimizer.className,
      config: model.optimizer.toConfig(),
      registered_name: null,
    },
    loss: lossToConfig(model.compiledLossSpec!),
    loss_weights: null,
    metrics: model.compiledMetrics.map(metricToConfig),
    weighted_metrics: null,
    run_eagerly: false,
    steps_per_execution: 1,
    jit_compile: false,
  };
}

/** Reads a Keras `compile_config` into `compile` options. */
function compileOptions(entry: Config, file: string): CompileOptions {
  const unsupported = (what: string) =>
    new TypeError(
      `Cannot compile the model loaded from ${file} as its ${what}; load it with { compile: false } and call compile`,
    );
  if (entry["loss_weights"] !== null && entry["loss_weights"] !== undefined) {
    throw unsupported("compile config has loss_weights (one loss per output is not supported)");
  }
  const optimizer = entry["optimizer"];
  const metrics = (entry["metrics"] ?? []) as unknown[];
  if (!Array.isArray(metrics)) throw unsupported("metrics are not a list");
  return {
    loss: lossOf(entry["loss"], unsupported),
    metrics: metrics.map((m) => metricOf(m, unsupported)),
    ...(optimizer === null || optimizer === undefined ? {} : {
      optimizer: typeof optimizer === "string"
        ? optimizer
        : optimizerFromConfig(optimizer as { class_name: string; config: Config }),
    }),
  };
}

/** The compiled loss: a name, or a serialized Keras loss with its options. */
function lossOf(value: unknown, unsupported: (what: string) => Error): LossSpec {
  try {
    return lossFromConfig(value);
  } catch (error) {
    throw unsupported(`loss is not one Shoal computes (${(error as Error).message})`);
  }
}

/** A metric given as a string, or as a serialized Keras object (`BinaryAccuracy`). */
function metricOf(value: unknown, unsupported: (what: string) => Error): string | MetricSpec {
  try {
    return metricFromConfig(value);
  } catch (error) {
    throw unsupported(`metric is not one Shoal computes (${(error as Error).message})`);
  }
}

/**
 * A layer's variables stored in one group (its own, or an inner layer's `subgroup`) in Keras's
 * stored order: trainable ones first, then the others.
 */
function layerVariables(
  layer: Layer,
  byPath: ReadonlyMap<string, LayoutEntry>,
  subgroup = "",
): LayoutEntry[] {
  const inGroup = layer.weightSpecs.filter((s) => (s.group ?? "") === subgroup);
  const specs = [...inGroup.filter((s) => s.trainable), ...inGroup.filter((s) => !s.trainable)];
  return specs.map((s) => byPath.get(`${layer.name}/${s.name}`)!);
}

interface LayerGroup {
  spec: KerasVarGroupSpec;
  layer: Layer;
  variables: LayoutEntry[];
}

/** Each weights-file group of `config` with the network layer it belongs to. */
function layerGroups(network: Network, config: unknown): LayerGroup[] {
  const byName = new Map(network.layers.map((l) => [l.name!, l]));
  const byPath = new Map(network.weightEntries().map((e) => [e.path, e]));
  return kerasVarGroups(config).map((spec) => {
    const layer = byName.get(spec.layerName);
    if (!layer) {
      throw new ModelMismatchError(
        `Cannot map weights to the model as its config names a layer "${spec.layerName}" the model does not have`,
        spec.layerName,
      );
    }
    return { spec, layer, variables: layerVariables(layer, byPath, spec.subgroup) };
  });
}

/** The trainable variables in Keras `model.trainable_variables` order (the optimizer's order). */
function trainableVariables(groups: LayerGroup[]): LayoutEntry[] {
  return groups.flatMap((g) => g.variables.filter((e) => e.trainable));
}

/** Everything a weights file holds for this model: layer groups and, when compiled, optimizer state. */
function modelWeights(model: Model, config: Config): KerasWeights {
  const network = model.network;
  const groups = layerGroups(network, config);
  const layers = new Map<string, KerasVarGroup>();
  for (const g of groups) {
    layers.set(g.spec.group, {
      name: g.spec.groupName ?? g.layer.name!,
      vars: g.variables.map((e) =>
        float32Var(e.shape, arrayOf(network, e).slice(e.offset, e.offset + e.size))
      ),
    });
  }
  const optimizer = model.compiledLoss === undefined ? null : {
    name: String(model.optimizer.toConfig()["name"]),
    vars: model.optimizer.saveOwnVariables(trainableVariables(groups), network.params.length),
  };
  return { model: { name: network.name, vars: [] }, layers, optimizer };
}

function arrayOf(network: Network, entry: LayoutEntry): Float32Array {
  return entry.trainable ? network.params : network.state;
}

function float32Var(shape: readonly number[], data: Float32Array): KerasVariable {
  return { shape: [...shape], dtype: "float32", data };
}

/**
 * Checks every layer variable of `weights` against the network and returns the function that
 * assigns them (nothing is written before every check passed).
 */
function layerWeightsFrom(
  network: Network,
  config: unknown,
  weights: KerasWeights,
  file: string,
): () => void {
  const writes: { target: Float32Array; offset: number; data: Float32Array }[] = [];
  const used = new Set<string>();
  for (const g of layerGroups(network, config)) {
    const group = weights.layers.get(g.spec.group);
    used.add(g.spec.group);
    if (g.variables.length === 0) continue;
    if (!group) {
      throw new ModelMismatchError(
        `Cannot load weights from ${file} as it has no weights for layer "${g.layer.name}" (${g.layer.className}, ` +
          `group "${g.spec.group}/vars"); it has: ${[...weights.layers.keys()].join(", ") || "no layers"}. ` +
          "Load weights saved from a model with the same layers in the same order.",
        g.variables[0]!.path,
      );
    }
    if (group.vars.length !== g.variables.length) {
      throw new ModelMismatchError(
        `Cannot load weights from ${file} into layer "${g.layer.name}" (${g.layer.className}) as it has ` +
          `${g.variables.length} weights but the file's group "${g.spec.group}/vars" (layer "${group.name}") has ` +
          `${group.vars.length}. Load weights saved from a model with the same architecture.`,
        g.variables[Math.min(group.vars.length, g.variables.length - 1)]!.path,
      );
    }
    g.variables.forEach((e, i) => {
      const v = group.vars[i]!;
      checkShape(e.path, e.shape, v, file, `layer "${group.name}"`);
      writes.push({ target: arrayOf(network, e), offset: e.offset, data: toFloat32(v, e.path, file) });
    });
  }
  for (const [path, group] of weights.layers) {
    if (!used.has(path) && group.vars.length > 0) {
      throw new ModelMismatchError(
        `Cannot load weights from ${file} as it holds weights for a layer "${group.name}" (group "${path}/vars") ` +
          "that this model does not have. Load weights saved from a model with the same architecture.",
        String(group.name ?? path),
      );
    }
  }
  return () => {
    for (const w of writes) w.target.set(w.data, w.offset);
  };
}

function checkShape(
  path: string,
  expected: readonly number[],
  v: KerasVariable,
  file: string,
  where: string,
): void {
  if (expected.length === v.shape.length && expected.every((d, i) => d === v.shape[i])) return;
  throw new ModelMismatchError(
    `Cannot load weight ${path} from ${file} as its shape differs: the model expects [${
      expected.join(", ")
    }] ` +
      `but the file (${where}) has [${
        v.shape.join(", ")
      }]. Load weights saved from a model with the same architecture.`,
    path,
  );
}

function toFloat32(v: KerasVariable, path: string, file: string): Float32Array {
  if (v.data instanceof Float32Array) return v.data;
  if (v.data instanceof Float64Array) return Float32Array.from(v.data);
  throw new ModelMismatchError(
    `Cannot load weight ${path} from ${file} as it is stored as ${v.dtype}: Shoal weights are float32`,
    path,
  );
}

/**
 * Checks the file's optimizer state against the optimizer and returns the function that restores it,
 * or null when there is none to restore. Like Keras, a state with another number of variables (another
 * optimizer, or one never built) is skipped with a warning.
 */
function optimizerStateFrom(
  optimizer: Optimizer,
  network: Network,
  config: unknown,
  weights: KerasWeights,
  file: string,
): (() => void) | null {
  const group = weights.optimizer;
  if (!group) return null;
  const trainable = trainableVariables(layerGroups(network, config));
  const expected = optimizer.ownVariableCount(trainable.length);
  if (group.vars.length !== expected) {
    console.warn(
      `Skipping the optimizer state of ${file}: the optimizer "${optimizer.name}" has ${expected} variables ` +
        `whereas the saved optimizer "${group.name}" has ${group.vars.length}. Training continues with a fresh optimizer.`,
    );
    return null;
  }
  return optimizer.loadOwnVariables(group.vars, trainable, network.params.length, (v, e, k) => {
    checkShape(e.path, e.shape, v, file, `optimizer slot ${k}`);
    return toFloat32(v, e.path, file);
  });
}
