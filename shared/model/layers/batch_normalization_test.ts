import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";

function context(training: boolean): CallContext {
  return { training, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const X = [[1, 2], [3, 6], [5, 10], [7, 2]];
const GAMMA = [2, 0.5];
const BETA = [1, -1];
// Per column: mean [4, 5]; biased variance [(9+1+1+9)/4, (9+1+25+9)/4] = [5, 11].
const MEAN = [4, 5];
const VAR = [5, 11];

function normalize(mean: number[], variance: number[], eps: number): number[] {
  return X.flatMap((row) =>
    row.map((v, c) => (v - mean[c]!) / Math.sqrt(variance[c]! + eps) * GAMMA[c]! + BETA[c]!)
  );
}

function built(opts: ConstructorParameters<typeof layers.BatchNormalization>[0] = {}) {
  const bn = new layers.BatchNormalization({ name: "bn", ...opts });
  bn.apply(new Input({ shape: [2] }));
  return bn;
}

Deno.test("BatchNormalization has Keras defaults: momentum 0.99, epsilon 1e-3, gamma/beta/moving stats", () => {
  const bn = built();
  assert.equal(bn.momentum, 0.99);
  assert.equal(bn.epsilon, 1e-3);
  assert.deepEqual(bn.weightSpecs.map((w) => [w.name, w.trainable, w.initializer]), [
    ["gamma", true, "ones"],
    ["beta", true, "zeros"],
    ["moving_mean", false, "zeros"],
    ["moving_variance", false, "ones"],
  ]);
  assert.equal(bn.countParams(), 8);
  const c = bn.getConfig();
  assert.equal(c.momentum, 0.99);
  assert.equal(c.epsilon, 1e-3);
  assert.equal(c.axis, -1);
});

Deno.test("BatchNormalization in training normalizes with batch statistics and reports mean and biased variance", () => {
  const bn = built();
  const ctx = context(true);
  const moving = [tf.tensor1d([100, 100]), tf.tensor1d([50, 50])];
  const y = bn.call([tf.tensor2d(X)], [tf.tensor1d(GAMMA), tf.tensor1d(BETA), ...moving], ctx);
  assertClose(y.dataSync(), normalize(MEAN, VAR, 1e-3));
  assert.equal(ctx.batchStats.length, 1);
  assert.equal(ctx.batchStats[0]!.layer, "bn");
  assertClose(ctx.batchStats[0]!.mean.dataSync(), MEAN);
  assertClose(ctx.batchStats[0]!.variance.dataSync(), VAR);
});

Deno.test("BatchNormalization in inference uses the moving statistics and reports nothing", () => {
  const bn = built({ epsilon: 0.01 });
  const ctx = context(false);
  const mm = [1, 2], mv = [4, 9];
  const y = bn.call([tf.tensor2d(X)], [
    tf.tensor1d(GAMMA),
    tf.tensor1d(BETA),
    tf.tensor1d(mm),
    tf.tensor1d(mv),
  ], ctx);
  assertClose(y.dataSync(), normalize(mm, mv, 0.01));
  assert.equal(ctx.batchStats.length, 0);
});

Deno.test("BatchNormalization over rank-3 inputs takes statistics over batch and positions", () => {
  const bn = new layers.BatchNormalization({ name: "bn", center: false, scale: false });
  bn.apply(new Input({ shape: [2, 2] }));
  assert.deepEqual(bn.weightSpecs.map((w) => w.name), ["moving_mean", "moving_variance"]);
  const ctx = context(true);
  // The same 4 rows of X, as 2 samples of 2 positions.
  bn.call([tf.tensor3d([[X[0]!, X[1]!], [X[2]!, X[3]!]])], [tf.zeros([2]), tf.ones([2])], ctx);
  assertClose(ctx.batchStats[0]!.mean.dataSync(), MEAN);
  assertClose(ctx.batchStats[0]!.variance.dataSync(), VAR);
});

Deno.test("BatchNormalization rejects momentum outside [0, 1] and epsilon <= 0", () => {
  assert.throws(
    () => new layers.BatchNormalization({ momentum: 1.5 }),
    /momentum must be in \[0, 1\]: received 1.5/,
  );
  assert.throws(() => new layers.BatchNormalization({ epsilon: 0 }), /epsilon must be > 0: received 0/);
});

Deno.test("A frozen BatchNormalization layer runs in inference mode even in training (Keras 3)", () => {
  const bn = built({ trainable: false });
  const ctx = context(true);
  const mm = [1, 2], mv = [4, 9];
  const y = bn.call([tf.tensor2d(X)], [
    tf.tensor1d(GAMMA),
    tf.tensor1d(BETA),
    tf.tensor1d(mm),
    tf.tensor1d(mv),
  ], ctx);
  assertClose(y.dataSync(), normalize(mm, mv, 1e-3));
  assert.equal(ctx.batchStats.length, 0);
});

Deno.test("BatchNormalization's training gradient equals autodiff of the textbook formula", () => {
  const bn = new layers.BatchNormalization({ name: "bn", epsilon: 0.01 });
  bn.apply(new Input({ shape: [3, 2] }));
  const x = tf.randomNormal([5, 3, 2], 3, 2, "float32", 7);
  const w = tf.randomNormal([5, 3, 2], 0, 1, "float32", 8);
  const gamma = tf.tensor1d([1.5, -0.5]), beta = tf.tensor1d([0.2, 0.1]);
  const moving = [tf.zeros([2]), tf.ones([2])];
  const ours = tf.grads((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.mean(tf.sum(tf.mul(bn.call([xs], [g, b, ...moving], context(true)), w), [1, 2]))
  )([x, gamma, beta]);
  const textbook = tf.grads((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xs, [0, 1]);
    return tf.mean(tf.sum(tf.mul(tf.batchNorm(xs, mean, variance, b, g, 0.01), w), [1, 2]));
  })([x, gamma, beta]);
  ours.forEach((g, i) => assertClose(g.dataSync(), textbook[i]!.dataSync(), 1e-5));
  assert.ok(tf.max(tf.abs(ours[0]!)).dataSync()[0]! > 1e-3, "the input gradient is not trivially zero");
});

Deno.test("updateState moves the moving statistics toward the batch's by 1 - momentum, in place", () => {
  const bn = new layers.BatchNormalization({ name: "bn", momentum: 0.75 });
  const movingMean = Float32Array.of(0, 4);
  const movingVariance = Float32Array.of(1, 1);
  bn.updateState(
    new Map([["moving_mean", movingMean], ["moving_variance", movingVariance]]),
    { mean: Float32Array.of(4, 0), variance: Float32Array.of(5, 1) },
  );
  assert.deepEqual([...movingMean], [1, 3]);
  assert.deepEqual([...movingVariance], [2, 1]);
  assert.throws(
    () => bn.updateState(new Map(), { mean: Float32Array.of(0), variance: Float32Array.of(0) }),
    /Cannot update the moving_mean of BatchNormalization layer "bn" .*received none/,
  );
});

Deno.test("only a trainable BatchNormalization exchanges partial results between slices", () => {
  assert.equal(new layers.BatchNormalization().exchangesBetweenSlices, true);
  assert.equal(new layers.BatchNormalization({ trainable: false }).exchangesBetweenSlices, false);
});
