/**
 * `optimizers` namespace: `new optimizers.AdamW({ learningRate })`, `optimizers.schedules.CosineDecay`.
 */
import { CosineDecay, ExponentialDecay, PiecewiseConstantDecay } from "./schedules.ts";
export {
  Adam,
  type AdamOptions,
  AdamW,
  type LearningRate,
  Optimizer,
  type OptimizerOptions,
  RMSprop,
  SGD,
} from "./optimizers.ts";
export { CosineDecay, ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay } from "./schedules.ts";
export const schedules = { CosineDecay, ExponentialDecay, PiecewiseConstantDecay };
