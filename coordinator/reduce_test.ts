import assert from "node:assert/strict";
import { layers, Sequential, tf } from "../mod.ts";
import { denseSquares, Engine, type SliceResult } from "../shared/model/mod.ts";
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

Deno.test("reduceSlices sums sparse squares over the union of the slices' rows, as over dense tables", () => {
  // A table of 5 rows of 2 at offset 1; the slices looked up rows {1, 3}, {0, 3} and {4}.
  const table = { offset: 1, size: 10, rowSize: 2 };
  const looked = [[1, 3], [0, 3], [4]];
  const counts = [3, 2, 2];
  const slices = looked.map((rows, k): SliceResult => ({
    count: counts[k]!,
    grads: new Float32Array(12),
    lossSum: 0,
    metricSums: [],
    regLoss: 0,
    batchStats: [],
    gradSquares: [{
      ...table,
      rows: Int32Array.from(rows),
      values: Float32Array.from({ length: rows.length * 2 }, (_, i) => 0.1 + 0.37 * (k + 1) * (i + 1)),
    }],
  }));
  const r = reduceSlices(slices);
  const sq = r.gradSquares![0]!;
  assert.deepEqual([sq.offset, sq.size, sq.rowSize, [...sq.rows]], [1, 10, 2, [0, 1, 3, 4]]);
  // The same sum over table-sized arrays, zeros on the rows a slice did not look up.
  const dense = new Float32Array(10);
  for (const s of slices) {
    const w = (s.count / 7) ** 2;
    const part = new Float32Array(10);
    const g = s.gradSquares![0]!;
    g.rows.forEach((row, j) => part.set(g.values.subarray(2 * j, 2 * j + 2), 2 * row));
    for (let i = 0; i < 10; i++) dense[i] = dense[i]! + w * part[i]!;
  }
  assert.deepEqual(denseSquares(sq), dense);
  assert.equal(sq.values.length, 8, "row 2, which no slice looked up, is not held");
  // Slices that disagree on the table are refused.
  const other = { ...slices[1]!, gradSquares: [{ ...slices[1]!.gradSquares![0]!, rowSize: 1 }] };
  assert.throws(
    () => reduceSlices([slices[0]!, other]),
    /sparse gradient at offset 1 as a slice reports another layout/,
  );
});
