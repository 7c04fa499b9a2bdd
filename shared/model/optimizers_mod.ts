/** `optimizers` namespace: `new optimizers.Adam({ learningRate })`, `optimizers.schedules.ExponentialDecay`. */
import { ExponentialDecay } from "./optimizers.ts";
export { Adam, ExponentialDecay, type LearningRate, Optimizer, RMSprop, SGD } from "./optimizers.ts";
export const schedules = { ExponentialDecay };
