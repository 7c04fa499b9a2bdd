/**
 * Keras losses as per-sample functions: each returns a [n] tensor of per-sample losses, so that workers
 * can return sums and the coordinator can combine slices exactly (sums and counts, not means of means).
 */
import { tf } from "./tf.ts";

export type LossName =
  | "sparse_categorical_crossentropy"
  | "categorical_crossentropy"
  | "binary_crossentropy"
  | "mean_squared_error"
  | "mean_absolute_error";

const ALIASES: Record<string, LossName> = {
  sparse_categorical_crossentropy: "sparse_categorical_crossentropy",
  categorical_crossentropy: "categorical_crossentropy",
  binary_crossentropy: "binary_crossentropy",
  mse: "mean_squared_error",
  mean_squared_error: "mean_squared_error",
  mae: "mean_absolute_error",
  mean_absolute_error: "mean_absolute_error",
};

/** Names accepted by `compile({ loss })`. */
export const LOSS_NAMES = Object.keys(ALIASES);

/** Keras's fuzz factor for clipping probabilities. */
export const EPSILON = 1e-7;

/** Resolves a loss name or alias; unknown names list the valid ones. */
export function resolveLoss(name: string): LossName {
  const loss = ALIASES[name];
  if (!loss) throw new TypeError(`Unknown loss: '${name}'. Use one of: ${LOSS_NAMES.join(", ")}`);
  return loss;
}

/**
 * What the output layer computed: its probabilities and, when it ended in softmax or sigmoid, the logits
 * before it (Keras's TensorFlow backend then computes cross-entropy from the logits, which is stabler).
 */
export interface OutputValue {
  output: tf.Tensor;
  logits?: { tensor: tf.Tensor; activation: "softmax" | "sigmoid" };
}

function lastAxisMean(x: tf.Tensor): tf.Tensor {
  return x.rank > 1 ? tf.mean(x, -1) : x;
}

/**
 * Mean over every axis but the first: an output of shape [n, steps, units] has one loss per step, and
 * Keras averages them all, which for equal-size samples is the mean of the per-sample means.
 */
export function sampleMean(x: tf.Tensor): tf.Tensor {
  return x.rank > 1 ? tf.mean(x, x.shape.map((_, k) => k).slice(1)) : x;
}

/** Per-sample loss values, shape [n]. `yTrue` is float32 (integer class ids for the sparse loss). */
export function perSampleLoss(name: LossName, yTrue: tf.Tensor, pred: OutputValue): tf.Tensor {
  return tf.tidy(() => sampleMean(elementLoss(name, yTrue, pred)));
}

/** Loss values with the output's shape less its last axis. */
function elementLoss(name: LossName, yTrue: tf.Tensor, pred: OutputValue): tf.Tensor {
  return tf.tidy(() => {
    const out = pred.output;
    switch (name) {
      case "sparse_categorical_crossentropy": {
        const classes = out.shape[out.shape.length - 1]!;
        const ids = tf.cast(yTrue.rank === out.rank ? tf.squeeze(yTrue, [-1]) : yTrue, "int32");
        const oneHot = tf.oneHot(ids, classes);
        return categorical(oneHot, pred);
      }
      case "categorical_crossentropy":
        return categorical(yTrue, pred);
      case "binary_crossentropy": {
        const y = yTrue.rank < out.rank ? tf.reshape(yTrue, out.shape) : yTrue;
        if (pred.logits?.activation === "sigmoid") {
          const z = pred.logits.tensor;
          // max(z, 0) - z*y + log(1 + exp(-|z|))
          const l = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
          return lastAxisMean(l);
        }
        const p = tf.clipByValue(out, EPSILON, 1 - EPSILON);
        const l = tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
        return lastAxisMean(l);
      }
      case "mean_squared_error": {
        const y = yTrue.rank < out.rank ? tf.reshape(yTrue, out.shape) : yTrue;
        return lastAxisMean(tf.squaredDifference(out, y));
      }
      case "mean_absolute_error": {
        const y = yTrue.rank < out.rank ? tf.reshape(yTrue, out.shape) : yTrue;
        return lastAxisMean(tf.abs(tf.sub(out, y)));
      }
    }
  });
}

function categorical(oneHot: tf.Tensor, pred: OutputValue): tf.Tensor {
  if (pred.logits?.activation === "softmax") {
    return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(pred.logits.tensor)), -1));
  }
  const out = pred.output;
  const normalized = tf.div(out, tf.sum(out, -1, true));
  const p = tf.clipByValue(normalized, EPSILON, 1 - EPSILON);
  return tf.neg(tf.sum(tf.mul(oneHot, tf.log(p)), -1));
}
