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
  | "mean_absolute_error"
  | "huber"
  | "kl_divergence";

const ALIASES: Record<string, LossName> = {
  sparse_categorical_crossentropy: "sparse_categorical_crossentropy",
  categorical_crossentropy: "categorical_crossentropy",
  binary_crossentropy: "binary_crossentropy",
  mse: "mean_squared_error",
  mean_squared_error: "mean_squared_error",
  mae: "mean_absolute_error",
  mean_absolute_error: "mean_absolute_error",
  huber: "huber",
  kld: "kl_divergence",
  kl_divergence: "kl_divergence",
};

/**
 * A loss with its options, as `compile({ loss })` takes it and workers receive it (plain data). A
 * name alone means Keras's defaults. `delta` is Huber's (default 1); `labelSmoothing` is the
 * cross-entropies' (categorical and binary, default 0).
 */
export interface LossSpec {
  readonly name: LossName;
  readonly delta?: number;
  readonly labelSmoothing?: number;
}

function smoothing(what: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!(v >= 0 && v <= 1)) {
    throw new RangeError(`Cannot create ${what} as labelSmoothing must be in [0, 1]: received ${value}`);
  }
  return v;
}

/** `losses.Huber`: squared error below `delta`, linear above (Keras default delta 1). */
export class Huber implements LossSpec {
  readonly name = "huber";
  readonly delta: number;
  constructor(opts: { delta?: number } = {}) {
    this.delta = opts.delta ?? 1;
    if (!(this.delta > 0 && Number.isFinite(this.delta))) {
      throw new RangeError(
        `Cannot create Huber as delta must be a finite number > 0: received ${opts.delta}`,
      );
    }
  }
}

/** `losses.KLDivergence`: Σ y·log(y / p), both clipped to [1e-7, 1]. */
export class KLDivergence implements LossSpec {
  readonly name = "kl_divergence";
}

/** `losses.CategoricalCrossentropy`; `labelSmoothing` mixes the labels with 1/classes (Keras default 0). */
export class CategoricalCrossentropy implements LossSpec {
  readonly name = "categorical_crossentropy";
  readonly labelSmoothing: number;
  constructor(opts: { labelSmoothing?: number } = {}) {
    this.labelSmoothing = smoothing("CategoricalCrossentropy", opts.labelSmoothing);
  }
}

/** `losses.BinaryCrossentropy`; `labelSmoothing` moves the labels toward 0.5 (Keras default 0). */
export class BinaryCrossentropy implements LossSpec {
  readonly name = "binary_crossentropy";
  readonly labelSmoothing: number;
  constructor(opts: { labelSmoothing?: number } = {}) {
    this.labelSmoothing = smoothing("BinaryCrossentropy", opts.labelSmoothing);
  }
}

/** `losses.SparseCategoricalCrossentropy` (Keras 3 has no label smoothing for it). */
export class SparseCategoricalCrossentropy implements LossSpec {
  readonly name = "sparse_categorical_crossentropy";
}

/** `losses.MeanSquaredError`. */
export class MeanSquaredError implements LossSpec {
  readonly name = "mean_squared_error";
}

/** `losses.MeanAbsoluteError`. */
export class MeanAbsoluteError implements LossSpec {
  readonly name = "mean_absolute_error";
}

/** The loss as a spec: a name resolved with its aliases, or a spec checked and copied. */
export function toLossSpec(loss: string | LossSpec): LossSpec {
  if (typeof loss === "string") return { name: resolveLoss(loss) };
  const name = resolveLoss(loss.name);
  return {
    name,
    ...(loss.delta !== undefined ? { delta: new Huber({ delta: loss.delta }).delta } : {}),
    ...(loss.labelSmoothing ? { labelSmoothing: smoothing(name, loss.labelSmoothing) } : {}),
  };
}

/** Keras class name and config of each loss (`compile_config.loss` when it has options). */
const CLASSES: Record<LossName, { className: string; config: (l: LossSpec) => Record<string, unknown> }> = {
  sparse_categorical_crossentropy: {
    className: "SparseCategoricalCrossentropy",
    config: () => ({ from_logits: false, ignore_class: null, axis: -1 }),
  },
  categorical_crossentropy: {
    className: "CategoricalCrossentropy",
    config: (l) => ({ from_logits: false, label_smoothing: l.labelSmoothing ?? 0, axis: -1 }),
  },
  binary_crossentropy: {
    className: "BinaryCrossentropy",
    config: (l) => ({ from_logits: false, label_smoothing: l.labelSmoothing ?? 0, axis: -1 }),
  },
  mean_squared_error: { className: "MeanSquaredError", config: () => ({}) },
  mean_absolute_error: { className: "MeanAbsoluteError", config: () => ({}) },
  huber: { className: "Huber", config: (l) => ({ delta: l.delta ?? 1 }) },
  kl_divergence: { className: "KLDivergence", config: () => ({}) },
};

/** Keras's names of the loss objects (`Huber().name` is "huber_loss"). */
const OBJECT_NAMES: Partial<Record<LossName, string>> = { huber: "huber_loss" };

/**
 * The loss as Keras's `compile_config` stores it: the name given (a string) when it has no options,
 * else the serialized Keras loss object.
 */
export function lossToConfig(loss: LossSpec): unknown {
  if (loss.delta === undefined && !loss.labelSmoothing) return loss.name;
  const c = CLASSES[loss.name];
  return {
    module: "keras.losses",
    class_name: c.className,
    config: {
      name: OBJECT_NAMES[loss.name] ?? loss.name,
      reduction: "sum_over_batch_size",
      ...c.config(loss),
    },
    registered_name: null,
  };
}

/**
 * A loss from Keras's `compile_config`: a name, or a serialized loss object with its options.
 * Throws a TypeError naming what Shoal cannot compute (logits, other reductions, other losses).
 */
export function lossFromConfig(value: unknown): LossSpec {
  if (typeof value === "string") return toLossSpec(value);
  const entry = value as { class_name?: unknown; config?: Record<string, unknown> } | null;
  const className = entry?.class_name;
  const found = (Object.entries(CLASSES) as [LossName, (typeof CLASSES)[LossName]][])
    .find(([, c]) => c.className === className);
  if (!found) {
    throw new TypeError(
      `Unknown loss ${JSON.stringify(value)}: use one of ${
        Object.values(CLASSES).map((c) => c.className).join(", ")
      }`,
    );
  }
  const config = entry?.config ?? {};
  if (config.from_logits === true) {
    throw new TypeError(
      `Cannot use ${className} with from_logits=true: Shoal computes losses on the outputs`,
    );
  }
  const reduction = config.reduction ?? "sum_over_batch_size";
  if (reduction !== "sum_over_batch_size") {
    throw new TypeError(
      `Cannot use ${className} with reduction=${
        JSON.stringify(reduction)
      }: Shoal reduces as Keras's default, ` +
        `"sum_over_batch_size"`,
    );
  }
  const [name] = found;
  return toLossSpec({
    name,
    ...(typeof config.delta === "number" ? { delta: config.delta } : {}),
    ...(typeof config.label_smoothing === "number" ? { labelSmoothing: config.label_smoothing } : {}),
  });
}

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
export function perSampleLoss(loss: LossName | LossSpec, yTrue: tf.Tensor, pred: OutputValue): tf.Tensor {
  const spec = typeof loss === "string" ? { name: loss } : loss;
  return tf.tidy(() => sampleMean(elementLoss(spec, yTrue, pred)));
}

/** Loss values with the output's shape less its last axis. */
function elementLoss(loss: LossSpec, yTrue: tf.Tensor, pred: OutputValue): tf.Tensor {
  return tf.tidy(() => {
    const out = pred.output;
    const smooth = loss.labelSmoothing ?? 0;
    const match = (y: tf.Tensor) => (y.rank < out.rank ? tf.reshape(y, out.shape) : y);
    switch (loss.name) {
      case "sparse_categorical_crossentropy": {
        const classes = out.shape[out.shape.length - 1]!;
        const ids = tf.cast(yTrue.rank === out.rank ? tf.squeeze(yTrue, [-1]) : yTrue, "int32");
        const oneHot = tf.oneHot(ids, classes);
        return categorical(oneHot, pred);
      }
      case "categorical_crossentropy": {
        // Keras: y * (1 - smoothing) + smoothing / classes.
        const classes = out.shape[out.shape.length - 1]!;
        return categorical(smooth ? tf.add(tf.mul(yTrue, 1 - smooth), smooth / classes) : yTrue, pred);
      }
      case "binary_crossentropy": {
        // Keras: y * (1 - smoothing) + 0.5 * smoothing.
        const y = smooth ? tf.add(tf.mul(match(yTrue), 1 - smooth), 0.5 * smooth) : match(yTrue);
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
      case "huber": {
        // Keras: where(|e| <= delta, 0.5·e², delta·|e| - 0.5·delta²), e = pred - y, mean over the last
        // axis; written as 0.5·c² + delta·(|e| - c) with c = min(|e|, delta), the same values, so the
        // gradient needs no comparison op (tfjs has no gradient for LessEqual).
        const delta = loss.delta ?? 1;
        const abs = tf.abs(tf.sub(out, match(yTrue)));
        const c = tf.minimum(abs, delta);
        return lastAxisMean(tf.add(tf.mul(0.5, tf.square(c)), tf.mul(delta, tf.sub(abs, c))));
      }
      case "kl_divergence": {
        // Keras: Σ y·log(y / p) with y and p clipped to [1e-7, 1].
        const y = tf.clipByValue(match(yTrue), EPSILON, 1);
        const p = tf.clipByValue(out, EPSILON, 1);
        const l = tf.mul(y, tf.log(tf.div(y, p)));
        return l.rank > 1 ? tf.sum(l, -1) : l;
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
