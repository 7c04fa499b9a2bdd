/** Keras layers. */
export { Activation } from "./activation.ts";
export { Bidirectional, type BidirectionalOptions, type MergeMode } from "./bidirectional.ts";
export { BatchNormalization, type BatchNormalizationOptions } from "./batch_normalization.ts";
export { Concatenate } from "./concatenate.ts";
export { Conv1D, type Conv1DOptions } from "./conv1d.ts";
export { Conv2D, type Conv2DOptions } from "./conv2d.ts";
export { Dense, type DenseOptions } from "./dense.ts";
export { DepthwiseConv2D, type DepthwiseConv2DOptions } from "./depthwise_conv2d.ts";
export { Dropout } from "./dropout.ts";
export { Embedding, type EmbeddingOptions } from "./embedding.ts";
export { Flatten } from "./flatten.ts";
export {
  GlobalAveragePooling1D,
  GlobalAveragePooling2D,
  GlobalMaxPooling1D,
  GlobalMaxPooling2D,
  type GlobalPoolingOptions,
} from "./global_pooling.ts";
export { Input, InputLayer } from "./input_layer.ts";
export {
  type BatchStats,
  type CallContext,
  formatShape,
  Layer,
  type LayerOptions,
  type Node,
  type Shape,
  sizeOf,
  type SliceExchange,
  type SparseSquaresPart,
  SymbolicTensor,
  type WeightSpec,
  WHOLE_BATCH,
} from "./layer.ts";
export { LayerNormalization, type LayerNormalizationOptions } from "./layer_normalization.ts";
export { Add, Average, Multiply, Subtract } from "./merge.ts";
export { MultiHeadAttention, type MultiHeadAttentionOptions } from "./multi_head_attention.ts";
export {
  AveragePooling1D,
  AveragePooling2D,
  MaxPooling1D,
  MaxPooling2D,
  type MaxPooling2DOptions,
  type Pooling1DOptions,
  type Pooling2DOptions,
} from "./pooling.ts";
export { GRU, type GRUOptions } from "./gru.ts";
export { LSTM, type LSTMOptions } from "./lstm.ts";
export type { Recurrent, RecurrentOptions } from "./recurrent.ts";
export { ReLU, type ReLUOptions } from "./relu.ts";
export { Rescaling, type RescalingOptions } from "./rescaling.ts";
export { SeparableConv2D, type SeparableConv2DOptions } from "./separable_conv2d.ts";
export { SimpleRNN } from "./simple_rnn.ts";
export { Reshape } from "./reshape.ts";
export { UpSampling2D } from "./up_sampling2d.ts";
export { type Padding2D, ZeroPadding2D } from "./zero_padding2d.ts";
