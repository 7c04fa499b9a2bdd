/**
 * Keras metrics, resolved like Keras ("accuracy" becomes sparse_categorical_accuracy,
 * categorical_accuracy or binary_accuracy from the loss and output shape), each kept as a few sums
 * that add up over slices, workers and steps: the per-sample sum of a mean metric, the confusion
 * counts of Precision and Recall, AUC's per-threshold true and false counts. A data-parallel run
 * sums those and computes the value once, as Keras does from its own state variables.
 */
import { tf } from "./tf.ts";
import { type LossName, sampleMean } from "./losses.ts";

/** Metrics that are the mean of a per-sample value. */
export type MeanMetricFn =
  | "sparse_categorical_accuracy"
  | "categorical_accuracy"
  | "binary_accuracy"
  | "mean_absolute_error"
  | "mean_squared_error"
  | "top_k_categorical_accuracy"
  | "sparse_top_k_categorical_accuracy";

export type MetricFn = MeanMetricFn | "auc" | "precision" | "recall";

/**
 * A compiled metric: the log name the user asked for (`accuracy`, `auc`), the function behind it,
 * and its options (plain data: workers receive it as it is).
 */
export interface MetricSpec {
  readonly name: string;
  readonly fn: MetricFn;
  /** top-k accuracies: how many of the highest predictions count. @default 5 */
  readonly k?: number;
  /** Precision and Recall: a prediction above it is positive. @default 0.5 */
  readonly threshold?: number;
  /** AUC: thresholds evenly spaced over [0, 1], Keras's default 200. */
  readonly numThresholds?: number;
}

const DIRECT: Record<string, MetricFn> = {
  sparse_categorical_accuracy: "sparse_categorical_accuracy",
  categorical_accuracy: "categorical_accuracy",
  binary_accuracy: "binary_accuracy",
  mae: "mean_absolute_error",
  mean_absolute_error: "mean_absolute_error",
  mse: "mean_squared_error",
  mean_squared_error: "mean_squared_error",
  top_k_categorical_accuracy: "top_k_categorical_accuracy",
  sparse_top_k_categorical_accuracy: "sparse_top_k_categorical_accuracy",
  auc: "auc",
  precision: "precision",
  recall: "recall",
};

/** Keras class names accepted as metric names too (`metrics=["AUC"]`). */
const CLASS_NAMES: Record<string, MetricFn> = {
  AUC: "auc",
  Precision: "precision",
  Recall: "recall",
  TopKCategoricalAccuracy: "top_k_categorical_accuracy",
  SparseTopKCategoricalAccuracy: "sparse_top_k_categorical_accuracy",
};

export const METRIC_NAMES = ["accuracy", "acc", ...Object.keys(DIRECT)];

function positiveInteger(what: string, name: string, value: number): void {
  if (!(Number.isInteger(value) && value > 0)) {
    throw new RangeError(`Cannot create ${what} as ${name} must be a positive integer: received ${value}`);
  }
}

/** `metrics.AUC`: area under the ROC curve from `numThresholds` thresholds, interpolated (Keras's defaults). */
export class AUC implements MetricSpec {
  readonly fn = "auc";
  readonly name: string;
  readonly numThresholds: number;
  constructor(opts: { numThresholds?: number; name?: string } = {}) {
    this.numThresholds = opts.numThresholds ?? 200;
    this.name = opts.name ?? "auc";
    if (!(Number.isInteger(this.numThresholds) && this.numThresholds > 1)) {
      throw new RangeError(
        `Cannot create AUC as numThresholds must be an integer > 1: received ${opts.numThresholds}`,
      );
    }
  }
}

function threshold(what: string, value: number | undefined): number {
  const t = value ?? 0.5;
  if (!(t >= 0 && t <= 1)) {
    throw new RangeError(`Cannot create ${what} as thresholds must be in [0, 1]: received ${value}`);
  }
  return t;
}

/** `metrics.Precision`: true positives over predicted positives (prediction > `thresholds`, default 0.5). */
export class Precision implements MetricSpec {
  readonly fn = "precision";
  readonly name: string;
  readonly threshold: number;
  constructor(opts: { thresholds?: number; name?: string } = {}) {
    this.threshold = threshold("Precision", opts.thresholds);
    this.name = opts.name ?? "precision";
  }
}

/** `metrics.Recall`: true positives over actual positives (prediction > `thresholds`, default 0.5). */
export class Recall implements MetricSpec {
  readonly fn = "recall";
  readonly name: string;
  readonly threshold: number;
  constructor(opts: { thresholds?: number; name?: string } = {}) {
    this.threshold = threshold("Recall", opts.thresholds);
    this.name = opts.name ?? "recall";
  }
}

/** `metrics.TopKCategoricalAccuracy`: the one-hot label is among the `k` highest predictions (default 5). */
export class TopKCategoricalAccuracy implements MetricSpec {
  readonly fn = "top_k_categorical_accuracy";
  readonly name: string;
  readonly k: number;
  constructor(opts: { k?: number; name?: string } = {}) {
    this.k = opts.k ?? 5;
    this.name = opts.name ?? "top_k_categorical_accuracy";
    positiveInteger("TopKCategoricalAccuracy", "k", this.k);
  }
}

/** `metrics.SparseTopKCategoricalAccuracy`: the class id is among the `k` highest predictions (default 5). */
export class SparseTopKCategoricalAccuracy implements MetricSpec {
  readonly fn = "sparse_top_k_categorical_accuracy";
  readonly name: string;
  readonly k: number;
  constructor(opts: { k?: number; name?: string } = {}) {
    this.k = opts.k ?? 5;
    this.name = opts.name ?? "sparse_top_k_categorical_accuracy";
    positiveInteger("SparseTopKCategoricalAccuracy", "k", this.k);
  }
}

/** Resolves a metric name, or checks and copies a metric object, for a model with this loss and output width. */
export function resolveMetric(name: string | MetricSpec, loss: LossName, outputUnits: number): MetricSpec {
  if (typeof name !== "string") {
    if (!Object.values(DIRECT).includes(name.fn)) {
      throw new TypeError(
        `Unknown metric function: '${name.fn}'. Use one of: ${Object.keys(DIRECT).join(", ")}`,
      );
    }
    return {
      name: name.name,
      fn: name.fn,
      ...(name.k !== undefined ? { k: name.k } : {}),
      ...(name.threshold !== undefined ? { threshold: name.threshold } : {}),
      ...(name.numThresholds !== undefined ? { numThresholds: name.numThresholds } : {}),
    };
  }
  if (CLASS_NAMES[name]) return { name: DIRECT_NAME[CLASS_NAMES[name]]!, fn: CLASS_NAMES[name] };
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

/** The log name Keras gives each metric class (`AUC()` logs as `auc`). */
const DIRECT_NAME: Partial<Record<MetricFn, string>> = {
  auc: "auc",
  precision: "precision",
  recall: "recall",
  top_k_categorical_accuracy: "top_k_categorical_accuracy",
  sparse_top_k_categorical_accuracy: "sparse_top_k_categorical_accuracy",
};

/** How many sums a metric keeps (see the module's documentation). */
export function metricWidth(m: MetricSpec): number {
  switch (m.fn) {
    case "auc":
      return 2 * (m.numThresholds ?? 200);
    case "precision":
    case "recall":
      return 3;
    default:
      return 1;
  }
}

/** The offset of each metric's sums in the flat `metricSums`, and their total length. */
export function metricOffsets(metrics: readonly MetricSpec[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const m of metrics) {
    offsets.push(total);
    total += metricWidth(m);
  }
  return { offsets, total };
}

/**
 * A metric's sums over some rows, shape [{@link metricWidth}]: the sum of its per-sample values, or
 * its confusion counts (Precision/Recall: true positives, false positives, false negatives; AUC: per
 * threshold bucket, the true then the false labels).
 */
export function metricSums(m: MetricSpec, yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (m.fn !== "auc" && m.fn !== "precision" && m.fn !== "recall") {
      return tf.reshape(tf.sum(perSampleMetric(m.fn, yTrue, yPred, m.k)), [1]);
    }
    if (yTrue.size !== yPred.size) {
      throw new RangeError(
        `Cannot compute metric ${m.name} as it needs one label per output value: received labels of shape ` +
          `[${yTrue.shape}] for outputs of shape [${yPred.shape}]. Use one-hot labels (utils.toCategorical) ` +
          `or a one-unit output`,
      );
    }
    const p = tf.reshape(yPred, [-1]);
    // Keras casts labels to bool: any nonzero label is positive.
    const label = tf.cast(tf.notEqual(tf.reshape(yTrue, [-1]), 0), "float32");
    if (m.fn === "auc") {
      // Keras's evenly-spaced thresholds t/(T-1), t = 0..T-1 (the first just below 0, the last just
      // above 1): a prediction p in [0, 1] falls in bucket max(ceil(p·(T-1)) - 1, 0), and counts as
      // positive at every threshold up to its bucket.
      const T = m.numThresholds ?? 200;
      const clipped = tf.clipByValue(p, 0, 1);
      const bucket = tf.cast(tf.relu(tf.sub(tf.ceil(tf.mul(clipped, T - 1)), 1)), "int32") as tf.Tensor1D;
      return tf.concat([
        tf.unsortedSegmentSum(label, bucket, T),
        tf.unsortedSegmentSum(tf.sub(1, label), bucket, T),
      ]);
    }
    const predicted = tf.cast(tf.greater(p, m.threshold ?? 0.5), "float32");
    return tf.stack([
      tf.sum(tf.mul(label, predicted)),
      tf.sum(tf.mul(tf.sub(1, label), predicted)),
      tf.sum(tf.mul(label, tf.sub(1, predicted))),
    ]);
  });
}

/** Keras's `divide_no_nan`. */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** A metric's value from its sums over `count` samples (Keras's `result()`). */
export function metricResult(m: MetricSpec, sums: ArrayLike<number>, count: number): number {
  switch (m.fn) {
    case "precision":
      return ratio(sums[0]!, sums[0]! + sums[1]!);
    case "recall":
      return ratio(sums[0]!, sums[0]! + sums[2]!);
    case "auc":
      return rocAuc(sums, m.numThresholds ?? 200);
    default:
      return sums[0]! / count;
  }
}

/**
 * Keras AUC (curve ROC, summation "interpolation") from per-bucket true and false counts: true and
 * false positives at threshold t are the counts of buckets >= t; the area is the sum of trapezoids
 * (fpr[t] - fpr[t+1]) · (recall[t] + recall[t+1]) / 2.
 */
function rocAuc(sums: ArrayLike<number>, T: number): number {
  const tp = new Float64Array(T), fp = new Float64Array(T);
  let t1 = 0, f1 = 0;
  for (let t = T - 1; t >= 0; t--) {
    t1 += sums[t]!;
    f1 += sums[T + t]!;
    tp[t] = t1;
    fp[t] = f1;
  }
  const positives = tp[0]!, negatives = fp[0]!;
  let area = 0;
  for (let t = 0; t < T - 1; t++) {
    const recall = ratio(tp[t]!, positives), nextRecall = ratio(tp[t + 1]!, positives);
    area += (ratio(fp[t]!, negatives) - ratio(fp[t + 1]!, negatives)) * (recall + nextRecall) / 2;
  }
  return area;
}

/** Per-sample metric values, shape [n] (averaged over the steps of a rank-3 output). `k` is top-k's. */
export function perSampleMetric(fn: MeanMetricFn, yTrue: tf.Tensor, yPred: tf.Tensor, k = 5): tf.Tensor {
  return tf.tidy(() => sampleMean(elementMetric(fn, yTrue, yPred, k)));
}

/**
 * Keras `in_top_k` (TensorFlow's): the target is in the top k when fewer than k predictions are
 * strictly greater than its own, so ties at the boundary count as in.
 */
function inTopK(yPred: tf.Tensor, target: tf.Tensor, k: number): tf.Tensor {
  const classes = yPred.shape[yPred.shape.length - 1]!;
  const own = tf.sum(tf.mul(yPred, tf.oneHot(tf.cast(target, "int32"), classes)), -1, true);
  const above = tf.sum(tf.cast(tf.greater(yPred, own), "float32"), -1);
  return tf.cast(tf.less(above, k), "float32");
}

function elementMetric(fn: MeanMetricFn, yTrue: tf.Tensor, yPred: tf.Tensor, k: number): tf.Tensor {
  return tf.tidy(() => {
    const match = (y: tf.Tensor) => (y.rank < yPred.rank ? tf.reshape(y, yPred.shape) : y);
    switch (fn) {
      case "sparse_categorical_accuracy": {
        const ids = yTrue.rank === yPred.rank ? tf.squeeze(yTrue, [-1]) : yTrue;
        return tf.cast(tf.equal(tf.argMax(yPred, -1), tf.cast(ids, "int32")), "float32");
      }
      case "categorical_accuracy":
        return tf.cast(tf.equal(tf.argMax(yPred, -1), tf.argMax(yTrue, -1)), "float32");
      case "top_k_categorical_accuracy":
        return inTopK(yPred, tf.argMax(yTrue, -1), k);
      case "sparse_top_k_categorical_accuracy":
        return inTopK(yPred, yTrue.rank === yPred.rank ? tf.squeeze(yTrue, [-1]) : yTrue, k);
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

/** Keras class names of the metrics with options. */
const METRIC_CLASSES: Partial<Record<MetricFn, string>> = {
  auc: "AUC",
  precision: "Precision",
  recall: "Recall",
  top_k_categorical_accuracy: "TopKCategoricalAccuracy",
  sparse_top_k_categorical_accuracy: "SparseTopKCategoricalAccuracy",
};

/**
 * The metric as Keras's `compile_config` stores it: the name given when it has no options, else
 * the serialized Keras metric object.
 */
export function metricToConfig(m: MetricSpec): unknown {
  const className = METRIC_CLASSES[m.fn];
  if (!className || (m.k === undefined && m.threshold === undefined && m.numThresholds === undefined)) {
    return m.name;
  }
  const specific = m.fn === "auc"
    ? {
      num_thresholds: m.numThresholds ?? 200,
      curve: "ROC",
      summation_method: "interpolation",
      multi_label: false,
      num_labels: null,
      label_weights: null,
      from_logits: false,
    }
    : m.fn === "precision" || m.fn === "recall"
    ? { thresholds: m.threshold ?? 0.5, top_k: null, class_id: null }
    : { k: m.k ?? 5 };
  return {
    module: "keras.metrics",
    class_name: className,
    config: { name: m.name, dtype: "float32", ...specific },
    registered_name: null,
  };
}

/**
 * A metric from Keras's `compile_config`: a name (returned as it is, resolved at compile), or a
 * serialized metric object. Options Shoal does not compute as Keras does are refused by name.
 */
export function metricFromConfig(value: unknown): string | MetricSpec {
  if (typeof value === "string") return value;
  const entry = value as { class_name?: unknown; config?: Record<string, unknown> } | null;
  const className = entry?.class_name;
  if (typeof className !== "string") {
    throw new TypeError(
      `Cannot read metric ${JSON.stringify(value)}: it is neither a name nor a Keras metric`,
    );
  }
  const c = entry?.config ?? {};
  const name = typeof c.name === "string" ? c.name : undefined;
  const refuse = (key: string) => {
    throw new TypeError(
      `Cannot use ${className} with ${key}=${JSON.stringify(c[key])}: Shoal computes it without`,
    );
  };
  const set = (key: string, fine: unknown[] = [null, undefined, false]) =>
    !fine.includes(c[key]) && refuse(key);
  switch (className) {
    case "AUC":
      if (c.curve !== undefined && c.curve !== "ROC") refuse("curve");
      if (c.summation_method !== undefined && c.summation_method !== "interpolation") {
        refuse("summation_method");
      }
      ["multi_label", "label_weights", "from_logits", "thresholds"].forEach((k) => set(k));
      return new AUC({
        ...(typeof c.num_thresholds === "number" ? { numThresholds: c.num_thresholds } : {}),
        ...(name ? { name } : {}),
      });
    case "Precision":
    case "Recall": {
      ["top_k", "class_id"].forEach((k) => set(k));
      const t = Array.isArray(c.thresholds) && c.thresholds.length === 1 ? c.thresholds[0] : c.thresholds;
      if (t !== null && t !== undefined && typeof t !== "number") refuse("thresholds");
      const opts = { ...(typeof t === "number" ? { thresholds: t } : {}), ...(name ? { name } : {}) };
      return className === "Precision" ? new Precision(opts) : new Recall(opts);
    }
    case "TopKCategoricalAccuracy":
    case "SparseTopKCategoricalAccuracy": {
      set("from_sorted_ids");
      const opts = { ...(typeof c.k === "number" ? { k: c.k } : {}), ...(name ? { name } : {}) };
      return className === "TopKCategoricalAccuracy"
        ? new TopKCategoricalAccuracy(opts)
        : new SparseTopKCategoricalAccuracy(opts);
    }
  }
  // Other metric objects (BinaryAccuracy, MeanAbsoluteError, ...) are known by their snake_case name.
  set("from_logits");
  return className.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}
