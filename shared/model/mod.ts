/** Shoal's model layer: Keras layers, the Network (topology + flat weights), losses, metrics, optimizers. */
export { tf } from "./tf.ts";
export * as layers from "./layers/mod.ts";
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
export { type LayoutEntry, ModelMismatchError, Network } from "./network.ts";
export { type Batch, Engine, type EngineSpec, type EvalResult, type SliceResult } from "./engine.ts";
export { LOSS_NAMES, type LossName, resolveLoss } from "./losses.ts";
export { type MetricSpec, resolveMetric } from "./metrics.ts";
export * as optimizers from "./optimizers_mod.ts";
export { getOptimizer, Optimizer, optimizerFromConfig } from "./optimizers.ts";
export * as regularizers from "./regularizers_mod.ts";
export { Regularizer } from "./regularizers.ts";
export { ACTIVATION_NAMES } from "./activations.ts";
export { type BackendName, initBackend } from "./backend.ts";
export { BACKEND_REQUESTS } from "./backends/select.ts";
export { hash32, Rng } from "./random.ts";
export { layerFromConfig, snakeCase } from "./serialization.ts";
export { closestName, didYouMean } from "./suggest.ts";
