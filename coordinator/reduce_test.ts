import assert from "node:assert/strict";
import { layers, Sequential, tf } from "../mod.ts";
import { Engine, type SliceResult } from "../shared/model/mod.ts";
import { rangeBatch, toDataset } from "./data.ts";
import { reduceSlices } from "./reduce.ts";

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const N = 10;
const X = tf.randomNormal([N, 6], 0, 1, "float32", 11);
const Y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 1]);

function engineFor(model: Sequential): Engine {
  return new Engine(model.network, {
    loss: "sparse_categorical_crossentropy",
    metrics: [{ name: "accuracy", fn: "sparse_categorical_accuracy" }],
    seed: 5,
  });
}

/** One step over rows 0..N at once, and the reduction of rows 0..6 and 6..N computed separately. */
function wholeAndSplit(model: Sequential): [SliceResult, SliceResult] {
  const engine = engineFor(model);
  const ds = toDataset(X, Y);
  const { params, state } = model.network;
  const whole = engine.trainSlice(params, state, rangeBatch(ds, 0, N), 3, 0);
  const a = engine.trainSlice(params, state, rangeBatch(ds, 0, 6), 3, 0);
  const b = engine.trainSlice(params, state, rangeBatch(ds, 6, N), 3, 6);
  return [whole, reduceSlices([a, b])];
}

Deno.test("The sample-weighted mean of two slices' gradients equals the whole batch's gradient", () => {
  const model = new Sequential([
    new layers.Dense(5, { activation: "tanh", inputShape: [6] }),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed: 2 });
  const [whole, split] = wholeAndSplit(model);
  assert.equal(split.count, N);
  assert.equal(whole.grads.length, model.network.params.length);
  assert.ok(whole.grads.some((g) => Math.abs(g) > 1e-3));
  assertClose(split.grads, whole.grads, 1e-5);
  assertClose([split.lossSum], [whole.lossSum], 1e-4);
  assert.deepEqual(split.metricSums, whole.metricSums);
});

Deno.test("With Dropout, slices given their global row offset reproduce the whole batch's gradient", () => {
  const model = new Sequential([
    new layers.Dense(8, { activation: "relu", inputShape: [6] }),
    new layers.Dropout(0.5),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed: 2 });
  const [whole, split] = wholeAndSplit(model);
  assertClose(split.grads, whole.grads, 1e-5);
});

Deno.test("Combined BatchNorm statistics equal the whole batch's mean and biased variance", () => {
  const model = new Sequential([
    new layers.Dense(4, { inputShape: [6] }),
    new layers.BatchNormalization(),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed: 2 });
  const [whole, split] = wholeAndSplit(model);
  assert.equal(split.batchStats.length, 1);
  assert.equal(split.batchStats[0]!.layer, "batch_normalization");
  assertClose(split.batchStats[0]!.mean, whole.batchStats[0]!.mean, 1e-5);
  assertClose(split.batchStats[0]!.variance, whole.batchStats[0]!.variance, 1e-5);
  // The whole-batch statistics are those of the first Dense layer's output, computed by hand.
  const { params } = model.network;
  const h = tf.add(
    tf.matMul(X, tf.tensor2d(params.subarray(0, 24), [6, 4])),
    tf.tensor1d(params.subarray(24, 28)),
  );
  const { mean, variance } = tf.moments(h, 0);
  assertClose(whole.batchStats[0]!.mean, mean.dataSync(), 1e-5);
  assertClose(whole.batchStats[0]!.variance, variance.dataSync(), 1e-5);
});

Deno.test("reduceSlices weights by sample count, sums in slice order, and rejects an empty step", () => {
  const slice = (count: number, g: number[], lossSum: number): SliceResult => ({
    count,
    grads: Float32Array.from(g),
    lossSum,
    metricSums: [count],
    regLoss: 0.5,
    batchStats: [],
  });
  const r = reduceSlices([slice(1, [4, 0], 1), slice(3, [0, 4], 2)]);
  assert.equal(r.count, 4);
  assert.deepEqual(Array.from(r.grads), [1, 3]);
  assert.equal(r.lossSum, 3);
  assert.deepEqual(r.metricSums, [4]);
  assert.equal(r.regLoss, 0.5);
  assert.deepEqual(Array.from(reduceSlices([slice(2, [1, 2], 1)]).grads), [1, 2]);
  assert.throws(() => reduceSlices([]), /Cannot reduce a step with no slices/);
});
