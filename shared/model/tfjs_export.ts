/**
 * Export to the TensorFlow.js Layers format (`tf.loadLayersModel`): a `model.json` holding the
 * topology in tfjs-layers' Keras-2-style JSON and a weights manifest, plus the weights as binary
 * shards of at most 4 MiB (the tfjs converter's default), split at byte boundaries as tfjs does.
 *
 * @module
 */
import { InputLayer, type Layer } from "./layers/mod.ts";
import type { Network } from "./network.ts";

/** The tfjs-layers version whose format this module writes. */
export const TFJS_LAYERS_VERSION = "4.22.0";

/** Options of {@link exportTfjsLayers}. */
export interface TfjsExportOptions {
  /** Largest weight shard in bytes. @default 4194304 (4 MiB, as the tfjs converter) */
  shardSizeBytes?: number;
}

/** What {@link exportTfjsLayers} wrote. */
export interface TfjsExportResult {
  /** Path of `model.json`. */
  modelJson: string;
  /** Paths of the weight shards, in manifest order. */
  shards: string[];
}

type Config = Record<string, unknown>;

/** Keras 3 config keys tfjs-layers does not know, left out of each layer's config. */
const KERAS3_ONLY_KEYS = new Set([
  "dtype",
  "quantization_config",
  "synchronized",
  "renorm",
  "renorm_clipping",
  "renorm_momentum",
  "batch_shape",
  "optional",
  "ragged",
]);

/** Keras 3 initializer class names that tfjs-layers spells differently. */
const TFJS_INITIALIZER: Record<string, string> = { LecunNormal: "LeCunNormal", LecunUniform: "LeCunUniform" };

/**
 * Writes `model.json` and `group1-shard<i>of<n>.bin` into `dir` (created when missing), in the format
 * `tf.loadLayersModel` reads. The shards are written first and `model.json` last, atomically, so a
 * reader never sees a `model.json` without its weights.
 *
 * @throws {RangeError} when `shardSizeBytes` is not a positive multiple of 4.
 */
export async function exportTfjsLayers(
  model: Network | { readonly network: Network },
  dir: string,
  opts: TfjsExportOptions = {},
): Promise<TfjsExportResult> {
  const shardSize = opts.shardSizeBytes ?? 4 * 1024 * 1024;
  if (!(Number.isInteger(shardSize) && shardSize > 0 && shardSize % 4 === 0)) {
    throw new RangeError(
      `Cannot export to TF.js as shardSizeBytes must be a positive multiple of 4: received ${shardSize}`,
    );
  }
  const network = "network" in model ? model.network : model;
  const { specs, data } = weightData(network);
  const count = Math.ceil(data.byteLength / shardSize);
  const names = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  await Deno.mkdir(dir, { recursive: true });
  const shards: string[] = [];
  for (const [i, name] of names.entries()) {
    const path = `${dir}/${name}`;
    await Deno.writeFile(path, data.subarray(i * shardSize, Math.min(data.byteLength, (i + 1) * shardSize)));
    shards.push(path);
  }
  const modelJson = `${dir}/model.json`;
  const json = {
    format: "layers-model",
    generatedBy: "Shoal",
    convertedBy: `Shoal exportTfjsLayers (tfjs-layers ${TFJS_LAYERS_VERSION} format)`,
    modelTopology: tfjsTopology(network),
    weightsManifest: [{ paths: names, weights: specs }],
  };
  const tmp = `${modelJson}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(json));
    await Deno.rename(tmp, modelJson);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
  return { modelJson, shards };
}

/** The tfjs-layers `modelTopology` of a network (what `LayersModel.toJSON` returns). */
export function tfjsTopology(network: Network): Config {
  const common = { keras_version: `tfjs-layers ${TFJS_LAYERS_VERSION}`, backend: "tensor_flow.js" };
  if (network.kind === "Sequential") {
    const layers = network.layers.filter((l) => !(l instanceof InputLayer));
    return {
      class_name: "Sequential",
      config: {
        name: network.name,
        layers: layers.map((layer, i) => ({
          class_name: layer.className,
          config: i === 0
            ? {
              ...layerConfig(layer),
              batch_input_shape: [null, ...network.inputShapes[0]!],
              dtype: "float32",
            }
            : layerConfig(layer),
        })),
      },
      ...common,
    };
  }
  const ref = (t: { node: { layer: Layer; index: number }; index: number }) => [
    t.node.layer.name,
    t.node.index,
    t.index,
  ];
  return {
    class_name: "Model",
    config: {
      name: network.name,
      layers: network.layers.map((layer) => ({
        name: layer.name,
        class_name: layer.className,
        config: layer instanceof InputLayer
          ? { batch_input_shape: [null, ...layer.shape], dtype: "float32", sparse: false, name: layer.name }
          : layerConfig(layer),
        inbound_nodes: layer instanceof InputLayer
          ? []
          : layer.inboundNodes.map((node) => node.inputs.map((t) => [...ref(t), {}])),
      })),
      input_layers: network.inputs.map(ref),
      output_layers: network.outputs.map(ref),
    },
    ...common,
  };
}

/** A layer's Keras 3 config in Keras 2 form: no dtype policy, plain `{ class_name, config }` objects. */
function layerConfig(layer: Layer): Config {
  const out: Config = {};
  for (const [key, value] of Object.entries(layer.getConfig())) {
    if (!KERAS3_ONLY_KEYS.has(key)) out[key] = keras2Value(value);
  }
  return out;
}

function keras2Value(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const entry = value as { class_name?: string; config?: Config };
  if (typeof entry.class_name !== "string") return value;
  const config = entry.config ?? {};
  switch (entry.class_name) {
    case "L1":
      return { class_name: "L1L2", config: { l1: config["l1"] ?? 0, l2: 0 } };
    case "L2":
      return { class_name: "L1L2", config: { l1: 0, l2: config["l2"] ?? 0 } };
    case "L1L2":
      return { class_name: "L1L2", config: { l1: config["l1"] ?? 0, l2: config["l2"] ?? 0 } };
  }
  const { input_axes: _in, output_axes: _out, ...rest } = config;
  return { class_name: TFJS_INITIALIZER[entry.class_name] ?? entry.class_name, config: rest };
}

/** The manifest entries and the concatenated little-endian float32 bytes of all weights. */
function weightData(network: Network): { specs: Config[]; data: Uint8Array } {
  const entries = network.weightEntries();
  const total = entries.reduce((n, e) => n + e.size, 0);
  const values = new Float32Array(total);
  let offset = 0;
  const specs = entries.map((e) => {
    values.set((e.trainable ? network.params : network.state).subarray(e.offset, e.offset + e.size), offset);
    offset += e.size;
    return { name: e.path, shape: [...e.shape], dtype: "float32" };
  });
  return { specs, data: new Uint8Array(values.buffer) };
}
