/**
 * Layers from Keras 3 config dicts (the `config.json` of a `.keras` file, and the model topology that the
 * coordinator sends to workers).
 */
import {
  Activation,
  Add,
  Average,
  AveragePooling1D,
  AveragePooling2D,
  BatchNormalization,
  Bidirectional,
  Concatenate,
  Conv1D,
  Conv2D,
  Dense,
  DepthwiseConv2D,
  type DepthwiseConv2DOptions,
  Dropout,
  Embedding,
  Flatten,
  GlobalAveragePooling1D,
  GlobalAveragePooling2D,
  GlobalMaxPooling1D,
  GlobalMaxPooling2D,
  GRU,
  InputLayer,
  type Layer,
  LayerNormalization,
  LSTM,
  MaxPooling1D,
  MaxPooling2D,
  MultiHeadAttention,
  Multiply,
  type Recurrent,
  type RecurrentOptions,
  ReLU,
  Rescaling,
  Reshape,
  SeparableConv2D,
  SimpleRNN,
  Subtract,
  UpSampling2D,
  ZeroPadding2D,
} from "./layers/mod.ts";
import { Regularizer } from "./regularizers.ts";
import { resolveInitializer } from "./initializers.ts";
import { unsupportedLayerMessage } from "./supported.ts";

type Config = Record<string, unknown>;

function initializerName(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string") return v;
  return resolveInitializer((v as { class_name: string }).class_name);
}

function pair(v: unknown): number | [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1])] : Number(v);
}

function single(v: unknown): number {
  return Array.isArray(v) ? Number(v[0]) : Number(v);
}

function channelsLast(className: string, c: Config): void {
  if (c.data_format !== undefined && c.data_format !== null && c.data_format !== "channels_last") {
    throw new TypeError(
      `${className} with data_format=${c.data_format} is not supported: use channels_last`,
    );
  }
}

function regularizerOf(v: unknown) {
  return Regularizer.fromConfig(v);
}

/** The options every recurrent layer reads from its config; unsupported features are refused. */
function recurrentOptions(className: string, c: Config): RecurrentOptions {
  for (const key of ["stateful", "unroll"]) {
    if (c[key] === true) {
      throw new TypeError(`${className} with ${key}=true is not supported: use ${key}=false`);
    }
  }
  return {
    ...common(c),
    activation: (c.activation as string | null | undefined) ?? "tanh",
    useBias: c.use_bias !== false,
    kernelInitializer: initializerName(c.kernel_initializer) ?? "glorot_uniform",
    recurrentInitializer: initializerName(c.recurrent_initializer) ?? "orthogonal",
    biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
    kernelRegularizer: regularizerOf(c.kernel_regularizer),
    recurrentRegularizer: regularizerOf(c.recurrent_regularizer),
    biasRegularizer: regularizerOf(c.bias_regularizer),
    returnSequences: c.return_sequences === true,
    returnState: c.return_state === true,
    goBackwards: c.go_backwards === true,
    dropout: Number(c.dropout ?? 0),
    recurrentDropout: Number(c.recurrent_dropout ?? 0),
  };
}

function recurrentFromConfig(entry: unknown, what: string): Recurrent {
  const e = entry as { class_name?: string; config?: Config } | null;
  const layer = e?.class_name && e.config
    ? layerFromConfig(e as { class_name: string; config: Config })
    : null;
  if (!(layer instanceof SimpleRNN || layer instanceof GRU || layer instanceof LSTM)) {
    throw new TypeError(
      `Bidirectional's ${what} must be a SimpleRNN, GRU or LSTM layer config: received ${
        JSON.stringify(e?.class_name)
      }`,
    );
  }
  return layer;
}

/** The options DepthwiseConv2D and SeparableConv2D read from their configs. */
function depthwiseOptions(c: Config): DepthwiseConv2DOptions {
  return {
    ...common(c),
    strides: pair(c.strides ?? 1),
    padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
    depthMultiplier: Number(c.depth_multiplier ?? 1),
    dilationRate: pair(c.dilation_rate ?? 1),
    activation: (c.activation as string | null) ?? "linear",
    useBias: c.use_bias !== false,
    depthwiseInitializer: initializerName(c.depthwise_initializer) ?? "glorot_uniform",
    biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
    depthwiseRegularizer: regularizerOf(c.depthwise_regularizer),
    biasRegularizer: regularizerOf(c.bias_regularizer),
  };
}

function common(c: Config): { name: string; trainable: boolean } {
  return { name: String(c.name), trainable: c.trainable !== false };
}

const FACTORIES: Record<string, (c: Config) => Layer> = {
  InputLayer: (c) => {
    const shape =
      (c.batch_shape ?? c.batch_input_shape ?? [null, ...(c.shape as number[])]) as (number | null)[];
    return new InputLayer({ shape: shape.slice(1) as number[], name: String(c.name) });
  },
  Dense: (c) =>
    new Dense(Number(c.units), {
      ...common(c),
      activation: (c.activation as string | null) ?? "linear",
      useBias: c.use_bias !== false,
      kernelInitializer: initializerName(c.kernel_initializer) ?? "glorot_uniform",
      biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
      kernelRegularizer: Regularizer.fromConfig(c.kernel_regularizer),
      biasRegularizer: Regularizer.fromConfig(c.bias_regularizer),
    }),
  Dropout: (c) => new Dropout(Number(c.rate), common(c)),
  BatchNormalization: (c) => {
    if (
      c.axis !== undefined && c.axis !== -1 &&
      !(Array.isArray(c.axis) && c.axis.length === 1 && c.axis[0] === -1)
    ) {
      throw new TypeError(
        `BatchNormalization with axis=${JSON.stringify(c.axis)} is not supported: use axis -1`,
      );
    }
    return new BatchNormalization({
      ...common(c),
      momentum: c.momentum as number | undefined,
      epsilon: c.epsilon as number | undefined,
      center: c.center as boolean | undefined,
      scale: c.scale as boolean | undefined,
    });
  },
  Activation: (c) => new Activation(String(c.activation), common(c)),
  Flatten: (c) => new Flatten(common(c)),
  Concatenate: (c) => new Concatenate({ ...common(c), axis: (c.axis as number | undefined) ?? -1 }),
  Conv2D: (c) => {
    if (c.data_format && c.data_format !== "channels_last") {
      throw new TypeError(`Conv2D with data_format=${c.data_format} is not supported: use channels_last`);
    }
    return new Conv2D(Number(c.filters), pair(c.kernel_size), {
      ...common(c),
      strides: pair(c.strides ?? 1),
      padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
      dilationRate: pair(c.dilation_rate ?? 1),
      activation: (c.activation as string | null) ?? "linear",
      useBias: c.use_bias !== false,
      kernelInitializer: initializerName(c.kernel_initializer) ?? "glorot_uniform",
      biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
      kernelRegularizer: Regularizer.fromConfig(c.kernel_regularizer),
      biasRegularizer: Regularizer.fromConfig(c.bias_regularizer),
    });
  },
  DepthwiseConv2D: (c) => {
    channelsLast("DepthwiseConv2D", c);
    return new DepthwiseConv2D(pair(c.kernel_size), depthwiseOptions(c));
  },
  SeparableConv2D: (c) => {
    channelsLast("SeparableConv2D", c);
    return new SeparableConv2D(Number(c.filters), pair(c.kernel_size), {
      ...depthwiseOptions(c),
      pointwiseInitializer: initializerName(c.pointwise_initializer) ?? "glorot_uniform",
      pointwiseRegularizer: regularizerOf(c.pointwise_regularizer),
    });
  },
  MaxPooling2D: (c) =>
    new MaxPooling2D({
      ...common(c),
      poolSize: pair(c.pool_size ?? 2),
      strides: c.strides === null || c.strides === undefined ? null : pair(c.strides),
      padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
    }),
  MaxPooling1D: (c) => {
    channelsLast("MaxPooling1D", c);
    return new MaxPooling1D({
      ...common(c),
      poolSize: single(c.pool_size ?? 2),
      strides: c.strides === null || c.strides === undefined ? null : single(c.strides),
      padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
    });
  },
  AveragePooling1D: (c) => {
    channelsLast("AveragePooling1D", c);
    return new AveragePooling1D({
      ...common(c),
      poolSize: single(c.pool_size ?? 2),
      strides: c.strides === null || c.strides === undefined ? null : single(c.strides),
      padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
    });
  },
  AveragePooling2D: (c) => {
    channelsLast("AveragePooling2D", c);
    return new AveragePooling2D({
      ...common(c),
      poolSize: pair(c.pool_size ?? 2),
      strides: c.strides === null || c.strides === undefined ? null : pair(c.strides),
      padding: (c.padding as "valid" | "same" | undefined) ?? "valid",
    });
  },
  GlobalAveragePooling1D: (c) => {
    channelsLast("GlobalAveragePooling1D", c);
    return new GlobalAveragePooling1D({ ...common(c), keepdims: c.keepdims === true });
  },
  GlobalAveragePooling2D: (c) => {
    channelsLast("GlobalAveragePooling2D", c);
    return new GlobalAveragePooling2D({ ...common(c), keepdims: c.keepdims === true });
  },
  GlobalMaxPooling1D: (c) => {
    channelsLast("GlobalMaxPooling1D", c);
    return new GlobalMaxPooling1D({ ...common(c), keepdims: c.keepdims === true });
  },
  GlobalMaxPooling2D: (c) => {
    channelsLast("GlobalMaxPooling2D", c);
    return new GlobalMaxPooling2D({ ...common(c), keepdims: c.keepdims === true });
  },
  Conv1D: (c) => {
    channelsLast("Conv1D", c);
    if (c.groups !== undefined && c.groups !== 1) {
      throw new TypeError(`Conv1D with groups=${c.groups} is not supported: use groups 1`);
    }
    return new Conv1D(Number(c.filters), single(c.kernel_size), {
      ...common(c),
      strides: single(c.strides ?? 1),
      padding: (c.padding as "valid" | "same" | "causal" | undefined) ?? "valid",
      dilationRate: single(c.dilation_rate ?? 1),
      activation: (c.activation as string | null) ?? "linear",
      useBias: c.use_bias !== false,
      kernelInitializer: initializerName(c.kernel_initializer) ?? "glorot_uniform",
      biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
      kernelRegularizer: regularizerOf(c.kernel_regularizer),
      biasRegularizer: regularizerOf(c.bias_regularizer),
    });
  },
  Embedding: (c) =>
    new Embedding(Number(c.input_dim), Number(c.output_dim), {
      ...common(c),
      embeddingsInitializer: initializerName(c.embeddings_initializer) ?? "uniform",
      embeddingsRegularizer: regularizerOf(c.embeddings_regularizer),
      maskZero: c.mask_zero === true,
    }),
  LayerNormalization: (c) =>
    new LayerNormalization({
      ...common(c),
      axis: (c.axis as number | number[] | undefined) ?? -1,
      epsilon: c.epsilon as number | undefined,
      center: c.center as boolean | undefined,
      scale: c.scale as boolean | undefined,
      betaInitializer: initializerName(c.beta_initializer) ?? "zeros",
      gammaInitializer: initializerName(c.gamma_initializer) ?? "ones",
      betaRegularizer: regularizerOf(c.beta_regularizer),
      gammaRegularizer: regularizerOf(c.gamma_regularizer),
    }),
  SimpleRNN: (c) => new SimpleRNN(Number(c.units), recurrentOptions("SimpleRNN", c)),
  GRU: (c) =>
    new GRU(Number(c.units), {
      ...recurrentOptions("GRU", c),
      recurrentActivation: (c.recurrent_activation as string | undefined) ?? "sigmoid",
      resetAfter: c.reset_after !== false,
    }),
  LSTM: (c) =>
    new LSTM(Number(c.units), {
      ...recurrentOptions("LSTM", c),
      recurrentActivation: (c.recurrent_activation as string | undefined) ?? "sigmoid",
      unitForgetBias: c.unit_forget_bias !== false,
    }),
  Bidirectional: (c) => {
    const mergeMode = c.merge_mode ?? "concat";
    if (mergeMode === null) {
      throw new TypeError("Bidirectional with merge_mode=None is not supported (two outputs): use concat");
    }
    const backward = c.backward_layer ? recurrentFromConfig(c.backward_layer, "backward_layer") : undefined;
    return new Bidirectional(recurrentFromConfig(c.layer, "layer"), {
      ...common(c),
      mergeMode: mergeMode as "concat",
      ...(backward ? { backwardLayer: backward } : {}),
    });
  },
  MultiHeadAttention: (c) => {
    const axes = c.attention_axes;
    if (axes !== null && axes !== undefined && !(Array.isArray(axes) && axes.length === 1 && axes[0] === 1)) {
      throw new TypeError(
        `MultiHeadAttention with attention_axes=${
          JSON.stringify(axes)
        } is not supported: use [1] (the steps axis)`,
      );
    }
    for (const key of ["use_gate", "sliding_window"]) {
      if (c[key] !== undefined && c[key] !== null && c[key] !== false) {
        throw new TypeError(`MultiHeadAttention with ${key}=${JSON.stringify(c[key])} is not supported`);
      }
    }
    if (Array.isArray(c.output_shape) && c.output_shape.length !== 1) {
      throw new TypeError(
        `MultiHeadAttention with output_shape=${
          JSON.stringify(c.output_shape)
        } is not supported: use one size`,
      );
    }
    return new MultiHeadAttention({
      ...common(c),
      numHeads: Number(c.num_heads),
      keyDim: Number(c.key_dim),
      valueDim: c.value_dim === null || c.value_dim === undefined ? null : Number(c.value_dim),
      dropout: Number(c.dropout ?? 0),
      useBias: c.use_bias !== false,
      outputShape: c.output_shape === null || c.output_shape === undefined ? null : single(c.output_shape),
      kernelInitializer: initializerName(c.kernel_initializer) ?? "glorot_uniform",
      biasInitializer: initializerName(c.bias_initializer) ?? "zeros",
      kernelRegularizer: regularizerOf(c.kernel_regularizer),
      biasRegularizer: regularizerOf(c.bias_regularizer),
    });
  },
  Add: (c) => new Add(common(c)),
  Subtract: (c) => new Subtract(common(c)),
  Multiply: (c) => new Multiply(common(c)),
  Average: (c) => new Average(common(c)),
  ReLU: (c) =>
    new ReLU({
      ...common(c),
      maxValue: (c.max_value as number | null | undefined) ?? null,
      negativeSlope: (c.negative_slope as number | undefined) ?? 0,
      threshold: (c.threshold as number | undefined) ?? 0,
    }),
  Rescaling: (c) => {
    if (typeof c.scale !== "number" || (c.offset !== undefined && typeof c.offset !== "number")) {
      throw new RangeError(
        `Rescaling with scale=${JSON.stringify(c.scale)} and offset=${
          JSON.stringify(c.offset)
        } is not supported: use one number each (per-channel lists are not)`,
      );
    }
    return new Rescaling(c.scale, { ...common(c), offset: c.offset ?? 0 });
  },
  Reshape: (c) => new Reshape((c.target_shape as number[]).map(Number), common(c)),
  ZeroPadding2D: (c) => {
    channelsLast("ZeroPadding2D", c);
    return new ZeroPadding2D({
      ...common(c),
      padding: (c.padding as [[number, number], [number, number]] | undefined) ?? 1,
    });
  },
  UpSampling2D: (c) => {
    channelsLast("UpSampling2D", c);
    return new UpSampling2D({
      ...common(c),
      size: pair(c.size ?? 2),
      interpolation: (c.interpolation as "nearest" | undefined) ?? "nearest",
    });
  },
};

/** Layer class names that can be read from a config. */
export const LAYER_CLASS_NAMES = Object.keys(FACTORIES);

/**
 * Builds an (unbuilt) layer from its Keras 3 `{ class_name, config }` entry. A class Shoal lacks is a
 * `TypeError` naming the layer, its class and the classes Shoal loads.
 */
export function layerFromConfig(entry: { class_name: string; config: Config }): Layer {
  const factory = Object.hasOwn(FACTORIES, entry.class_name) ? FACTORIES[entry.class_name] : undefined;
  if (!factory) {
    const name = typeof entry.config?.name === "string" ? ` "${entry.config.name}"` : "";
    throw new TypeError(
      unsupportedLayerMessage(
        entry.class_name,
        `load layer${name} (class ${entry.class_name})`,
        [
          ...LAYER_CLASS_NAMES,
        ].sort(),
      ) + " Rebuild the model from supported layers to use it with Shoal.",
    );
  }
  return factory(entry.config);
}

/** Keras's snake_case of a class name: `BatchNormalization` → `batch_normalization`, `Conv2D` → `conv2d`. */
export function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
