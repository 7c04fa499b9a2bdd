import assert from "node:assert/strict";
import { metrics, tf } from "../../mod.ts";
import {
  metricFromConfig,
  metricResult,
  type MetricSpec,
  metricSums,
  metricToConfig,
  metricWidth,
  perSampleMetric,
  resolveMetric,
} from "./metrics.ts";

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

Deno.test("accuracy resolves from the loss like Keras", () => {
  assert.deepEqual(resolveMetric("accuracy", "sparse_categorical_crossentropy", 10), {
    name: "accuracy",
    fn: "sparse_categorical_accuracy",
  });
  assert.equal(resolveMetric("acc", "categorical_crossentropy", 10).fn, "categorical_accuracy");
  assert.equal(resolveMetric("accuracy", "binary_crossentropy", 3).fn, "binary_accuracy");
  assert.equal(resolveMetric("accuracy", "mean_squared_error", 1).fn, "binary_accuracy");
  assert.equal(resolveMetric("accuracy", "mean_squared_error", 4).fn, "categorical_accuracy");
  assert.deepEqual(resolveMetric("mae", "mean_squared_error", 1), { name: "mae", fn: "mean_absolute_error" });
  assert.deepEqual(resolveMetric("mse", "mean_absolute_error", 1), { name: "mse", fn: "mean_squared_error" });
});

Deno.test("unknown metric names list the valid ones", () => {
  assert.throws(
    () => resolveMetric("f1", "mean_squared_error", 1),
    /Unknown metric: 'f1'. Use one of: accuracy, acc, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, mae/,
  );
});

Deno.test("sparse_categorical_accuracy and categorical_accuracy compare the argmax", () => {
  const p = tf.tensor2d([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]]);
  assert.deepEqual(values(perSampleMetric("sparse_categorical_accuracy", tf.tensor1d([0, 1, 1]), p)), [
    1,
    0,
    1,
  ]);
  assert.deepEqual(values(perSampleMetric("sparse_categorical_accuracy", tf.tensor2d([[0], [2], [0]]), p)), [
    1,
    1,
    0,
  ]);
  const oneHot = tf.tensor2d([[0, 1, 0], [0, 0, 1], [0, 1, 0]]);
  assert.deepEqual(values(perSampleMetric("categorical_accuracy", oneHot, p)), [0, 1, 1]);
});

Deno.test("binary_accuracy thresholds at 0.5 and averages over the last axis", () => {
  assert.deepEqual(
    values(perSampleMetric("binary_accuracy", tf.tensor1d([1, 0, 1]), tf.tensor2d([[0.9], [0.6], [0.5]]))),
    [
      1,
      0,
      0,
    ],
  );
  assert.deepEqual(
    values(
      perSampleMetric(
        "binary_accuracy",
        tf.tensor2d([[1, 0], [1, 1]]),
        tf.tensor2d([[0.8, 0.1], [0.2, 0.7]]),
      ),
    ),
    [
      1,
      0.5,
    ],
  );
});

Deno.test("mae and mse metrics are per-sample means", () => {
  const y = tf.tensor2d([[1, 2], [0, -1]]);
  const p = tf.tensor2d([[1.5, 1], [2, -1]]);
  assert.deepEqual(values(perSampleMetric("mean_absolute_error", y, p)), [0.75, 1]);
  assert.deepEqual(values(perSampleMetric("mean_squared_error", y, p)), [0.625, 2]);
  assert.deepEqual(
    values(perSampleMetric("mean_absolute_error", tf.tensor1d([1, 2]), tf.tensor2d([[3], [2]]))),
    [2, 0],
  );
});

Deno.test("Metrics of a rank-3 output average over the steps of each sample", () => {
  const p = tf.tensor3d([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]]);
  assert.deepEqual(values(perSampleMetric("sparse_categorical_accuracy", tf.tensor2d([[0, 0], [0, 1]]), p)), [
    0.5,
    1,
  ]);
});

/** A metric's value over the given rows, from its sums (as a run computes it). */
function result(m: MetricSpec, y: tf.Tensor, p: tf.Tensor, count = y.shape[0]!): number {
  return metricResult(m, metricSums(m, y, p).dataSync(), count);
}

const YT = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0];
// Predictions on and off the threshold grid: 0, 0.5 and 1 exactly, ties at 0.35.
const YP = [0.9, 0.1, 0.5, 0, 1, 0.5, 0.8, 0.3, 0.35, 0.35];

/** Values computed by Keras 3.15 (`keras.metrics.AUC()` etc., `update_state` then `result`) on YT/YP. */
Deno.test("AUC is Keras's: interpolated ROC over its evenly spaced thresholds, exact at the grid points", () => {
  const y = tf.tensor1d(YT), p = tf.tensor2d(YP, [10, 1]);
  const auc = resolveMetric("auc", "binary_crossentropy", 1);
  assert.deepEqual(auc, { name: "auc", fn: "auc" });
  assert.equal(metricWidth(auc), 400);
  assert.ok(Math.abs(result(auc, y, p) - 0.5600000023841858) < 1e-6);
  assert.ok(Math.abs(result(new metrics.AUC({ numThresholds: 5 }), y, p) - 0.5799999833106995) < 1e-6);
  assert.ok(Math.abs(result(new metrics.AUC({ numThresholds: 3 }), y, p) - 0.6000000238418579) < 1e-6);
  // A multi-column output is flattened, as Keras's AUC without multi_label.
  const Y = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  const P = tf.tensor2d([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.5, 0.4]]);
  assert.ok(Math.abs(result(auc, Y, P) - 0.6666666269302368) < 1e-6);
});

Deno.test("AUC over two parts of the data is the AUC of the whole: its counts add, its values would not", () => {
  const auc = new metrics.AUC();
  const a = metricSums(auc, tf.tensor1d(YT.slice(0, 4)), tf.tensor2d(YP.slice(0, 4), [4, 1])).dataSync();
  const b = metricSums(auc, tf.tensor1d(YT.slice(4)), tf.tensor2d(YP.slice(4), [6, 1])).dataSync();
  const summed = Array.from(a, (v, i) => v + b[i]!);
  assert.ok(Math.abs(metricResult(auc, summed, 10) - 0.5600000023841858) < 1e-6);
});

Deno.test("Precision and Recall count predictions above the threshold (0.5 by default), as Keras", () => {
  const y = tf.tensor1d(YT), p = tf.tensor2d(YP, [10, 1]);
  assert.ok(
    Math.abs(result(resolveMetric("precision", "binary_crossentropy", 1), y, p) - 0.6666666865348816) < 1e-6,
  );
  assert.ok(
    Math.abs(result(resolveMetric("Recall", "binary_crossentropy", 1), y, p) - 0.4000000059604645) < 1e-6,
  );
  assert.ok(Math.abs(result(new metrics.Precision({ thresholds: 0.3 }), y, p) - 0.5714285969734192) < 1e-6);
  const Y = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  const P = tf.tensor2d([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.5, 0.4]]);
  assert.equal(result(new metrics.Precision(), Y, P), 0.5);
  // No predicted positives: 0, as Keras's divide_no_nan.
  assert.equal(result(new metrics.Precision({ thresholds: 1 }), y, p), 0);
});

Deno.test("top-k accuracies count ties at the boundary as in, as Keras's in_top_k", () => {
  const P = tf.tensor2d([[0.1, 0.4, 0.4, 0.1], [0.3, 0.3, 0.2, 0.2], [0.25, 0.25, 0.25, 0.25], [
    0.7,
    0.1,
    0.1,
    0.1,
  ]]);
  const ids = [2, 2, 3, 1];
  const oneHot = tf.oneHot(tf.tensor1d(ids, "int32"), 4);
  // Keras 3.15: sparse top-2 and top-2 [1, 0, 1, 1], top-1 [1, 0, 1, 0].
  assert.deepEqual(values(perSampleMetric("sparse_top_k_categorical_accuracy", tf.tensor1d(ids), P, 2)), [
    1,
    0,
    1,
    1,
  ]);
  assert.deepEqual(values(perSampleMetric("top_k_categorical_accuracy", oneHot, P, 2)), [1, 0, 1, 1]);
  assert.deepEqual(values(perSampleMetric("top_k_categorical_accuracy", oneHot, P, 1)), [1, 0, 1, 0]);
  assert.equal(result(new metrics.SparseTopKCategoricalAccuracy({ k: 2 }), tf.tensor1d(ids), P), 0.75);
  // The default k is 5: every one of 4 classes is in.
  assert.equal(
    result(resolveMetric("top_k_categorical_accuracy", "categorical_crossentropy", 4), oneHot, P),
    1,
  );
});

Deno.test("metric objects round-trip through Keras's compile_config; names stay strings", () => {
  assert.equal(metricToConfig(resolveMetric("auc", "binary_crossentropy", 1)), "auc");
  const auc = metricToConfig(new metrics.AUC({ numThresholds: 50, name: "roc" }));
  assert.deepEqual((auc as { config: Record<string, unknown> }).config.num_thresholds, 50);
  assert.deepEqual(metricFromConfig(auc), new metrics.AUC({ numThresholds: 50, name: "roc" }));
  assert.deepEqual(
    metricFromConfig(metricToConfig(new metrics.Recall({ thresholds: 0.7 }))),
    new metrics.Recall({ thresholds: 0.7 }),
  );
  assert.deepEqual(
    metricFromConfig(metricToConfig(new metrics.TopKCategoricalAccuracy({ k: 3 }))),
    new metrics.TopKCategoricalAccuracy({ k: 3 }),
  );
  // As Keras 3.15 writes AUC(curve="PR"): refused with the key.
  assert.throws(() => metricFromConfig({ class_name: "AUC", config: { curve: "PR" } }), /curve="PR"/);
  assert.equal(
    metricFromConfig({ class_name: "BinaryAccuracy", config: { name: "acc" } }),
    "binary_accuracy",
  );
});
