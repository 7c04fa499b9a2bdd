/**
 * Keras metrics as per-sample functions ([n] tensors), resolved like Keras: "accuracy" becomes
 * sparse_categorical_accuracy, categorical_accuracy or binary_accuracy from the loss and output shape.
 */
import { tf } from "./tf.ts";
import { type LossName, sampleMean } from "./losses.ts";

export type MetricFn =
  | "sparse_categorical_accuracy"
  | "categorical_accuracy"
  | "binary_accuracy"
  | "mean_absolute_error"
  | "mean_squared_error";

/** A compiled metric: the log name the user asked for (`accuracy`, `mae`) and the function behind it. */
export interface MetricSpec {
  name: string;
  fn: MetricFn;
}

const DIRECT: Record<string, MetricFn> = {
  sparse_categorical_accuracy: "sparse_categorical_accuracy",
  categorical_accuracy: "categorical_accuracy",
  binary_accuracy: "binary_accuracy",
  mae: "mean_absolute_error",
  mean_absolute_error: "mean_absolute_error",
  mse: "mean_squared_error",
  mean_squared_error: "mean_squared_error",
};

export const METRIC_NAMES = ["accuracy", "acc", ...Object.keys(DIRECT)];

/** Resolves a metric name for a model with this loss and output width. */
export function resolveMetric(name: string, loss: LossName, outputUnits: number): MetricSpec {
  if (name === "accuracy" || name === "acc") {
    let fn: MetricFn;
    if (loss === "sparse_categorical_crossentropy") fn = "sparse_categorical_accuracy";
    else if (loss === "categorical_crossentropy") fn = "categorical_accuracy";
    else if (loss === "binary_crossentropy" || outputUnits === 1) fn = "binary_accuracy";
    else fn = "categorical_accuracy";
    return { name, fn };
  }
  const fn = DIRECT[name];
  if (!fn) throw new TypeError(`Unknown metric: '${name}'. Use one of: ${METRIC_NAMES.join(", ")}`);
  return { name, fn };
}

/** Per-sample metric values, shape [n] (averaged over the steps of a rank-3 output). */
export function perSampleMetric(fn: MetricFn, yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => sampleMean(elementMetric(fn, yTrue, yPred)));
}

function elementMetric(fn: MetricFn, yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const match = (y: tf.Tensor) => (y.rank < yPred.rank ? tf.reshape(y, yPred.shape) : y);
    switch (fn) {
      case "sparse_categorical_accuracy": {
        const ids = yTrue.rank === yPred.rank ? tf.squeeze(yTrue, [-1]) : yTrue;
        return tf.cast(tf.equal(tf.argMax(yPred, -1), tf.cast(ids, "int32")), "float32");
      }
      case "categorical_accuracy":
        return tf.cast(tf.equal(tf.argMax(yPred, -1), tf.argMax(yTrue, -1)), "float32");
      case "binary_accuracy": {
        const hit = tf.cast(tf.equal(tf.cast(tf.greater(yPred, 0.5), "float32"), match(yTrue)), "float32");
        return hit.rank > 1 ? tf.mean(hit, -1) : hit;
      }
      case "mean_absolute_error": {
        const d = tf.abs(tf.sub(yPred, match(yTrue)));
        return d.rank > 1 ? tf.mean(d, -1) : d;
      }
      case "mean_squared_error": {
        const d = tf.squaredDifference(yPred, match(yTrue));
        return d.rank > 1 ? tf.mean(d, -1) : d;
      }
    }
  });
}
