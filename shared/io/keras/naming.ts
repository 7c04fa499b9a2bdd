/**
 * Where Keras 3 keeps each layer's variables in a weights file, derived from the model config
 * (`config.json` of a `.keras` archive).
 *
 * Keras addresses a layer's variables by position, not by layer name (layer names are often
 * auto-generated and differ between two builds of the same model). It walks the model's layer list in
 * order and names each layer's group after its class in snake_case, with a counter per class name:
 * `Dense, Dense, BatchNormalization, Dense` → `layers/dense`, `layers/dense_1`,
 * `layers/batch_normalization`, `layers/dense_2`. The list is `config.layers` in config order;
 * a Sequential model leaves out its InputLayer, a Functional model keeps its InputLayers (which then
 * get groups `input_layer`, `input_layer_1`, …). A nested model's layers live under
 * `<its group>/layers/…`.
 *
 * @module
 */

import { KerasFileError } from "./errors.ts";
import type { KerasWeights } from "./weights_h5.ts";

/** Where one layer's variables are stored. */
export interface KerasVarGroupSpec {
  /** The layer's Keras name (`config.name`), e.g. `"dense_4"`. */
  readonly layerName: string;
  /** The layer's Keras class, e.g. `"Dense"`. */
  readonly className: string;
  /** Path of the group holding `vars`, e.g. `"layers/dense_1"`; the key in `KerasWeights.layers`. */
  readonly group: string;
  /** Number of variables the layer stores, or null for a class this table does not know. */
  readonly nVars: number | null;
  /**
   * For a group of an inner layer (an LSTM's `cell`, a Bidirectional's `forward_layer/cell`, a
   * MultiHeadAttention's `query_dense`): its path below the layer's group. Absent for the layer's own.
   */
  readonly subgroup?: string;
  /** For an inner layer's group: the `name` attribute Keras gives it (`lstm_cell`, `forward_gru`, `query`). */
  readonly groupName?: string;
}

/** An inner layer's group: path below the owner's group, its name attribute, its variable count. */
interface InnerGroup {
  readonly path: string;
  readonly name: string;
  readonly nVars: number;
}

const RECURRENT_CLASSES = new Set(["SimpleRNN", "GRU", "LSTM"]);

/** Variables of a recurrent layer's cell: kernel, recurrent_kernel and (when used) bias. */
function cellVarCount(layerConfig: Readonly<Record<string, unknown>>): number {
  return layerConfig["use_bias"] === false ? 2 : 3;
}

/**
 * The groups Keras writes below a layer's own group for its inner layers, in the order Keras tracks
 * them (which is also the order of their variables in `model.trainable_variables`).
 */
export function kerasInnerGroups(
  className: string,
  layerConfig: Readonly<Record<string, unknown>>,
): InnerGroup[] {
  if (RECURRENT_CLASSES.has(className)) {
    return [{ path: "cell", name: `${toSnakeCase(className)}_cell`, nVars: cellVarCount(layerConfig) }];
  }
  if (className === "Bidirectional") {
    const out: InnerGroup[] = [];
    const forward = asRecord(layerConfig["layer"]);
    const sides = [
      ["forward_layer", forward, ""],
      ["backward_layer", asRecord(layerConfig["backward_layer"]) ?? forward, "backward_"],
    ] as const;
    for (const [side, inner, renamed] of sides) {
      const innerClass = String(inner?.["class_name"] ?? "");
      const innerConfig = asRecord(inner?.["config"]) ?? {};
      const own = String(innerConfig["name"] ?? "");
      // Without a backward_layer entry, Keras derives the backward layer from the forward one.
      const innerName = inner === forward && renamed ? renamed + own.replace(/^forward_/, "") : own;
      out.push({ path: side, name: innerName, nVars: 0 });
      for (const g of kerasInnerGroups(innerClass, innerConfig)) {
        out.push({ path: `${side}/${g.path}`, name: g.name, nVars: g.nVars });
      }
    }
    return out;
  }
  if (className === "MultiHeadAttention") {
    const dense = layerConfig["use_bias"] === false ? 1 : 2;
    return [
      { path: "query_dense", name: "query", nVars: dense },
      { path: "key_dense", name: "key", nVars: dense },
      { path: "value_dense", name: "value", nVars: dense },
      { path: "output_dense", name: "attention_output", nVars: dense },
      { path: "_softmax", name: "softmax", nVars: 0 },
      { path: "_dropout_layer", name: "dropout", nVars: 0 },
    ];
  }
  return [];
}

const MODEL_CLASSES = new Set(["Sequential", "Functional", "Model"]);

const WEIGHTLESS_CLASSES = new Set([
  "InputLayer",
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "SpatialDropout3D",
  "GaussianDropout",
  "GaussianNoise",
  "AlphaDropout",
  "Flatten",
  "Reshape",
  "Permute",
  "RepeatVector",
  "Concatenate",
  "Add",
  "Subtract",
  "Multiply",
  "Average",
  "Maximum",
  "Minimum",
  "Dot",
  "Activation",
  "ReLU",
  "LeakyReLU",
  "ELU",
  "Softmax",
  "Identity",
  "Rescaling",
  "MaxPooling1D",
  "MaxPooling2D",
  "MaxPooling3D",
  "AveragePooling1D",
  "AveragePooling2D",
  "AveragePooling3D",
  "GlobalMaxPooling1D",
  "GlobalMaxPooling2D",
  "GlobalMaxPooling3D",
  "GlobalAveragePooling1D",
  "GlobalAveragePooling2D",
  "GlobalAveragePooling3D",
  "ZeroPadding1D",
  "ZeroPadding2D",
  "ZeroPadding3D",
  "Cropping1D",
  "Cropping2D",
  "Cropping3D",
  "UpSampling1D",
  "UpSampling2D",
  "UpSampling3D",
]);

const KERNEL_BIAS_CLASSES = new Set([
  "Dense",
  "Conv1D",
  "Conv2D",
  "Conv3D",
  "Conv1DTranspose",
  "Conv2DTranspose",
  "Conv3DTranspose",
  "DepthwiseConv1D",
  "DepthwiseConv2D",
]);

/**
 * Keras's snake_case of a class name (`keras.src.utils.naming.to_snake_case`):
 * `BatchNormalization` → `batch_normalization`, `Conv2D` → `conv2d`, `MaxPooling2D` →
 * `max_pooling2d`, `InputLayer` → `input_layer`.
 */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, "")
    .replace(/(.)([A-Z][a-z]+)/g, "$1_$2")
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

/**
 * Number of variables a layer of `className` stores, in Keras order, or null when unknown.
 * Dense/Conv: `[kernel, bias?]`; BatchNormalization: `[gamma?, beta?, moving_mean,
 * moving_variance]`; LayerNormalization: `[gamma?, beta?]`; Embedding: `[embeddings]`.
 */
export function kerasLayerVarCount(
  className: string,
  layerConfig: Readonly<Record<string, unknown>>,
): number | null {
  const flag = (key: string) => (layerConfig[key] === false ? 0 : 1);
  if (WEIGHTLESS_CLASSES.has(className) || MODEL_CLASSES.has(className)) return 0;
  if (KERNEL_BIAS_CLASSES.has(className)) return 1 + flag("use_bias");
  if (className === "SeparableConv1D" || className === "SeparableConv2D") return 2 + flag("use_bias");
  if (className === "BatchNormalization") return flag("scale") + flag("center") + 2;
  if (className === "LayerNormalization") return flag("scale") + flag("center");
  if (className === "Embedding" || className === "PReLU") return 1;
  if (RECURRENT_CLASSES.has(className) || className === "Bidirectional") return 0;
  if (className === "MultiHeadAttention") return 0;
  return null;
}

/**
 * The weights-file group of every layer of a Keras 3 model config, in Keras's saving order.
 * `modelConfig` is the parsed `config.json` (`{ class_name: "Sequential" | "Functional", config:
 * { name, layers: [...] } }`). Nested models are listed, then their layers under `<group>/layers/`.
 *
 * @throws {TypeError} when `modelConfig` is not a Sequential or Functional model config.
 */
export function kerasVarGroups(modelConfig: unknown): KerasVarGroupSpec[] {
  const specs: KerasVarGroupSpec[] = [];
  collect(modelConfig, "", specs);
  return specs;
}

/**
 * Checks that `weights` has a group, with the expected number of variables, for every layer of
 * `modelConfig` (the check Keras's loader relies on). `file` names the weights file in the error.
 *
 * @throws {KerasFileError} naming the first missing or mismatched group and what the file has.
 */
export function checkWeightsForConfig(weights: KerasWeights, modelConfig: unknown, file: string): void {
  for (const spec of kerasVarGroups(modelConfig)) {
    const group = weights.layers.get(spec.group);
    if (!group) {
      throw new KerasFileError(
        file,
        `Cannot load ${file} into this model as it has no group "${spec.group}/vars" for layer ` +
          `"${spec.layerName}" (${spec.className}); the file has: ${
            [...weights.layers.keys()].join(", ") || "none"
          }. ` +
          "The weights were saved from a different model: load them into a model with the same layers in the same order.",
      );
    }
    if (spec.nVars !== null && group.vars.length !== spec.nVars) {
      throw new KerasFileError(
        file,
        `Cannot load ${file} into this model as layer "${spec.layerName}" (${spec.className}) needs ` +
          `${spec.nVars} variables but group "${spec.group}/vars" has ${group.vars.length}. ` +
          "The weights were saved from a different model: check the layer's units, use_bias, center and scale.",
      );
    }
  }
}

function collect(modelConfig: unknown, prefix: string, specs: KerasVarGroupSpec[]): void {
  const root = asRecord(modelConfig);
  const className = root?.["class_name"];
  const config = asRecord(root?.["config"]);
  const layers = config?.["layers"];
  if (typeof className !== "string" || !MODEL_CLASSES.has(className) || !Array.isArray(layers)) {
    throw new TypeError(
      "Cannot derive weight groups as the model config must be { class_name: Sequential | Functional, " +
        `config: { layers: [...] } }: current class_name is ${JSON.stringify(className)} and ` +
        `config.layers is ${Array.isArray(layers) ? "an array" : typeof layers}`,
    );
  }
  const usedNames = new Map<string, number>();
  layers.forEach((layer, index) => {
    const entry = asRecord(layer);
    const layerClass = entry?.["class_name"];
    const layerConfig = asRecord(entry?.["config"]) ?? {};
    if (typeof layerClass !== "string") {
      throw new TypeError(
        `Cannot derive weight groups as config.layers[${index}].class_name must be a string: ` +
          `current value is ${JSON.stringify(layerClass)}`,
      );
    }
    if (className === "Sequential" && layerClass === "InputLayer") return;
    const group = `${prefix}layers/${uniqueName(toSnakeCase(layerClass), usedNames)}`;
    const layerName = String(layerConfig["name"] ?? entry?.["name"] ?? "");
    specs.push({
      layerName,
      className: layerClass,
      group,
      nVars: kerasLayerVarCount(layerClass, layerConfig),
    });
    for (const inner of kerasInnerGroups(layerClass, layerConfig)) {
      specs.push({
        layerName,
        className: layerClass,
        group: `${group}/${inner.path}`,
        nVars: inner.nVars,
        subgroup: inner.path,
        groupName: inner.name,
      });
    }
    if (MODEL_CLASSES.has(layerClass)) collect(layer, `${group}/`, specs);
  });
}

/** Keras `_get_unique_name`: the first use keeps the name, later ones get `_1`, `_2`, … */
function uniqueName(name: string, used: Map<string, number>): string {
  const count = used.get(name);
  if (count === undefined) {
    used.set(name, 0);
    return name;
  }
  used.set(name, count + 1);
  return `${name}_${count + 1}`;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}
