/**
 * Shoal: a Keras-style trainer for Deno that trains one model data-parallel across worker processes.
 *
 * ```ts
 * import { Sequential, layers, optimizers } from "./mod.ts";
 * const model = new Sequential([new layers.Dense(10, { activation: "softmax", inputShape: [784] })]);
 * model.compile({ optimizer: new optimizers.Adam({ learningRate: 0.001 }), loss: "sparse_categorical_crossentropy" });
 * ```
 * @module
 */
import { initBackend } from "./shared/model/mod.ts";
import { toCategorical } from "./shared/model/utils.ts";
import { plotHistory } from "./shared/io/plot/mod.ts";
import { loadModel } from "./coordinator/model.ts";

export { Model, Sequential } from "./coordinator/model.ts";
export type {
  CompileOptions,
  DistributeOptions,
  EvaluateOptions,
  FitOptions,
  InputData,
  NamedInputs,
  PredictOptions,
  Verbose,
} from "./coordinator/model.ts";
export { initBackend, Input, layers, optimizers, regularizers, tf } from "./shared/model/mod.ts";
export * as callbacks from "./shared/callbacks/mod.ts";
export { exportTfjsLayers } from "./shared/model/tfjs_export.ts";
export * as datasets from "./shared/model/datasets.ts";
export { Dataset } from "./shared/io/dataset/mod.ts";

/** Keras `losses` names accepted by `compile`, and loss objects with options (`losses.Huber({ delta })`). */
export * as losses from "./shared/model/losses.ts";

/** Keras `metrics` objects with options (`metrics.AUC({ numThresholds })`), for `compile({ metrics })`. */
export * as metrics from "./shared/model/metrics.ts";

/** Keras `models`: `await models.loadModel("model.keras")`. */
export const models = { loadModel };

/** Every error Shoal raises on purpose, for `instanceof` (see errors.ts). */
export * as errors from "./errors.ts";

/** Keras `utils`. */
export const utils = { toCategorical, to_categorical: toCategorical, plotHistory };

// Tensors can be created as soon as Shoal is imported: pick the backend now (SHOAL_BACKEND or auto).
await initBackend((Deno.env.get("SHOAL_BACKEND") as Parameters<typeof initBackend>[0] | undefined) ?? "auto");
