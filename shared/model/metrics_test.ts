import assert from "node:assert/strict";
import { tf } from "../../mod.ts";
import { perSampleMetric, resolveMetric } from "./metrics.ts";

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
