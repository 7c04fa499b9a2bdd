/** Keras layers. */
export { Activation } from "./activation.ts";
export { BatchNormalization, type BatchNormalizationOptions } from "./batch_normalization.ts";
export { Concatenate } from "./concatenate.ts";
export { Conv2D, type Conv2DOptions } from "./conv2d.ts";
export { Dense, type DenseOptions } from "./dense.ts";
export { Dropout } from "./dropout.ts";
export { Flatten } from "./flatten.ts";
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
  SymbolicTensor,
  type WeightSpec,
  WHOLE_BATCH,
} from "./layer.ts";
export { MaxPooling2D, type MaxPooling2DOptions } from "./max_pooling2d.ts";
