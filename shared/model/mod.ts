/** Shoal's model layer: Keras layers, the Network (topology + flat weights), losses, metrics, optimizers. */
export { tf } from "./tf.ts";
import * as layerModule from "./layers/mod.ts";
import { guardLayers } from "./supported.ts";

/**
 * Keras `layers`: `new layers.Dense(64, { activation: "relu" })`. A Keras layer Shoal lacks
 * (`layers.Embedding`) throws an error that names it and lists the supported ones.
 */
export const layers: typeof layerModule = guardLayers(layerModule);

/** The types of {@link layers}, for annotations such as `const l: layers.Dense`. */
export declare namespace layers {
  export type Activation = layerModule.Activation;
  export type BatchNormalization = layerModule.BatchNormalization;
  export type BatchNormalizationOptions = layerModule.BatchNormalizationOptions;
  export type Concatenate = layerModule.Concatenate;
  export type Conv2D = layerModule.Conv2D;
  export type Conv2DOptions = layerModule.Conv2DOptions;
  export type Dense = layerModule.Dense;
  export type DenseOptions = layerModule.DenseOptions;
  export type Dropout = layerModule.Dropout;
  export type Flatten = layerModule.Flatten;
  export type Input = layerModule.Input;
  export type InputLayer = layerModule.InputLayer;
  export type MaxPooling2D = layerModule.MaxPooling2D;
  export type MaxPooling2DOptions = layerModule.MaxPooling2DOptions;
  export type Add = layerModule.Add;
  export type Average = layerModule.Average;
  export type AveragePooling1D = layerModule.AveragePooling1D;
  export type AveragePooling2D = layerModule.AveragePooling2D;
  export type Conv1D = layerModule.Conv1D;
  export type Conv1DOptions = layerModule.Conv1DOptions;
  export type Embedding = layerModule.Embedding;
  export type EmbeddingOptions = layerModule.EmbeddingOptions;
  export type GlobalAveragePooling1D = layerModule.GlobalAveragePooling1D;
  export type GlobalAveragePooling2D = layerModule.GlobalAveragePooling2D;
  export type GlobalMaxPooling1D = layerModule.GlobalMaxPooling1D;
  export type GlobalMaxPooling2D = layerModule.GlobalMaxPooling2D;
  export type GlobalPoolingOptions = layerModule.GlobalPoolingOptions;
  export type LayerNormalization = layerModule.LayerNormalization;
  export type LayerNormalizationOptions = layerModule.LayerNormalizationOptions;
  export type MaxPooling1D = layerModule.MaxPooling1D;
  export type Multiply = layerModule.Multiply;
  export type Pooling1DOptions = layerModule.Pooling1DOptions;
  export type Pooling2DOptions = layerModule.Pooling2DOptions;
  export type ReLU = layerModule.ReLU;
  export type ReLUOptions = layerModule.ReLUOptions;
  export type Rescaling = layerModule.Rescaling;
  export type RescalingOptions = layerModule.RescalingOptions;
  export type Reshape = layerModule.Reshape;
  export type Subtract = layerModule.Subtract;
  export type UpSampling2D = layerModule.UpSampling2D;
  export type ZeroPadding2D = layerModule.ZeroPadding2D;
  export type Bidirectional = layerModule.Bidirectional;
  export type BidirectionalOptions = layerModule.BidirectionalOptions;
  export type GRU = layerModule.GRU;
  export type GRUOptions = layerModule.GRUOptions;
  export type LSTM = layerModule.LSTM;
  export type LSTMOptions = layerModule.LSTMOptions;
  export type Recurrent = layerModule.Recurrent;
  export type RecurrentOptions = layerModule.RecurrentOptions;
  export type SimpleRNN = layerModule.SimpleRNN;
  export type MultiHeadAttention = layerModule.MultiHeadAttention;
  export type MultiHeadAttentionOptions = layerModule.MultiHeadAttentionOptions;
  export type Layer = layerModule.Layer;
  export type LayerOptions = layerModule.LayerOptions;
  export type SymbolicTensor = layerModule.SymbolicTensor;
  export type Shape = layerModule.Shape;
  export type BatchStats = layerModule.BatchStats;
  export type CallContext = layerModule.CallContext;
  export type Node = layerModule.Node;
  export type SliceExchange = layerModule.SliceExchange;
  export type WeightSpec = layerModule.WeightSpec;
}
export {
  type BatchStats,
  type CallContext,
  Input,
  InputLayer,
  Layer,
  type Shape,
  type SliceExchange,
  SymbolicTensor,
  type WeightSpec,
  WHOLE_BATCH,
} from "./layers/mod.ts";
export { applyInSequence, type LayoutEntry, ModelMismatchError, Network } from "./network.ts";
export {
  type Batch,
  Engine,
  type EngineSpec,
  type EvalResult,
  type GradSquares,
  type SliceResult,
} from "./engine.ts";
export { denseSquares, gradSquaresProblem, sumRowSquares, unionRows } from "./grad_squares.ts";
export {
  LOSS_NAMES,
  lossFromConfig,
  type LossName,
  type LossSpec,
  lossToConfig,
  resolveLoss,
  toLossSpec,
} from "./losses.ts";
export {
  metricFromConfig,
  metricOffsets,
  metricResult,
  type MetricSpec,
  metricToConfig,
  metricWidth,
  resolveMetric,
} from "./metrics.ts";
export * as optimizers from "./optimizers_mod.ts";
export { getOptimizer, Optimizer, optimizerFromConfig, type ResidentBuffers } from "./optimizers.ts";
export * as regularizers from "./regularizers_mod.ts";
export { Regularizer } from "./regularizers.ts";
export { ACTIVATION_NAMES } from "./activations.ts";
export { type BackendName, initBackend } from "./backend.ts";
export { BACKEND_REQUESTS, type BackendRequest } from "./backends/select.ts";
export { hash32, Rng } from "./random.ts";
export { layerFromConfig, snakeCase } from "./serialization.ts";
export { closestName, didYouMean } from "./suggest.ts";
export { guardLayers, SUPPORTED_LAYERS, unsupportedLayerMessage } from "./supported.ts";
export { addScaled, firstNonFinite, nonFiniteProbe, weightedSum } from "./vector.ts";
