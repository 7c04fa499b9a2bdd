import assert from "node:assert/strict";
import { Input, layers, regularizers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const X = [[1, 2, 3], [-1, 0, 2]];
const K = [[1, -1], [0.5, 2], [-2, 1]];
const B = [0.1, -0.2];

/** x·K + b by hand. */
function affine(x: number[][], bias: boolean): number[] {
  return x.flatMap((row) => [0, 1].map((j) => row.reduce((s, v, i) => s + v * K[i]![j]!, bias ? B[j]! : 0)));
}

function run(layer: InstanceType<typeof layers.Dense>, x: number[][], ctx = context()): tf.Tensor {
  layer.apply(new Input({ shape: [x[0]!.length] }));
  const weights = [tf.tensor2d(K), ...(layer.useBias ? [tf.tensor1d(B)] : [])];
  return layer.call([tf.tensor2d(x)], weights, ctx);
}

Deno.test("Dense declares kernel [in, units] and bias [units], or only the kernel without bias", () => {
  const d = new layers.Dense(2);
  d.apply(new Input({ shape: [3] }));
  assert.deepEqual(d.weightSpecs.map((w) => [w.name, w.shape, w.trainable]), [
    ["kernel", [3, 2], true],
    ["bias", [2], true],
  ]);
  assert.equal(d.countParams(), 8);
  const noBias = new layers.Dense(2, { useBias: false });
  noBias.apply(new Input({ shape: [3] }));
  assert.deepEqual(noBias.weightSpecs.map((w) => w.name), ["kernel"]);
  assert.equal(noBias.countParams(), 6);
});

Deno.test("Dense computes x·kernel + bias, and x·kernel without bias", () => {
  assertClose(run(new layers.Dense(2), X).dataSync(), affine(X, true));
  assertClose(run(new layers.Dense(2, { useBias: false }), X).dataSync(), affine(X, false));
});

Deno.test("Dense applies its activation to the affine output", () => {
  const z = affine(X, true);
  assertClose(run(new layers.Dense(2, { activation: "relu" }), X).dataSync(), z.map((v) => Math.max(0, v)));
  assertClose(run(new layers.Dense(2, { activation: "tanh" }), X).dataSync(), z.map(Math.tanh));
  assertClose(
    run(new layers.Dense(2, { activation: "sigmoid" }), X).dataSync(),
    z.map((v) => 1 / (1 + Math.exp(-v))),
  );
  const softmax = [0, 1].flatMap((r) => {
    const row = z.slice(2 * r, 2 * r + 2).map(Math.exp);
    const s = row[0]! + row[1]!;
    return row.map((e) => e / s);
  });
  const ctx = context();
  const named = new layers.Dense(2, { activation: "softmax", name: "out" });
  assertClose(run(named, X, ctx).dataSync(), softmax);
  // The logits before softmax are kept for a stable cross-entropy.
  const logits = ctx.logits.get("out");
  assert.equal(logits?.activation, "softmax");
  assertClose(logits!.tensor.dataSync(), z);
});

Deno.test("Dense on a rank-3 input applies the kernel on the last axis of every position", () => {
  const d = new layers.Dense(2);
  const out = d.apply(new Input({ shape: [2, 3] }));
  assert.deepEqual(out.shape, [2, 2]);
  assert.deepEqual(d.weightSpecs[0]!.shape, [3, 2]);
  const x = tf.tensor3d([X, [[0, 1, 0], [2, 2, 2]]]);
  const y = d.call([x], [tf.tensor2d(K), tf.tensor1d(B)], context());
  assert.deepEqual(y.shape, [2, 2, 2]);
  assertClose(y.dataSync(), [...affine(X, true), ...affine([[0, 1, 0], [2, 2, 2]], true)]);
});

Deno.test("Dense config carries units, activation, bias and regularizer like Keras 3", () => {
  const d = new layers.Dense(4, { activation: "relu", kernelRegularizer: regularizers.l2(0.01), name: "d" });
  const c = d.getConfig();
  assert.equal(c.units, 4);
  assert.equal(c.activation, "relu");
  assert.equal(c.use_bias, true);
  assert.deepEqual(c.kernel_regularizer, {
    module: "keras.regularizers",
    class_name: "L2",
    config: { l2: 0.01 },
    registered_name: null,
  });
  assert.equal((c.kernel_initializer as { class_name: string }).class_name, "GlorotUniform");
});

Deno.test("Dense rejects a non-positive unit count with the value", () => {
  assert.throws(() => new layers.Dense(0), /units must be a positive integer: received 0/);
});

Deno.test("Dense with softmax on a rank-3 input keeps its logits in the output's shape", () => {
  const d = new layers.Dense(2, { activation: "softmax", name: "out" });
  d.apply(new Input({ shape: [2, 3] }));
  const ctx = context();
  const y = d.call([tf.tensor3d([X, X])], [tf.tensor2d(K), tf.tensor1d(B)], ctx);
  assert.deepEqual(y.shape, [2, 2, 2]);
  assert.deepEqual(ctx.logits.get("out")!.tensor.shape, [2, 2, 2]);
  assertClose(ctx.logits.get("out")!.tensor.dataSync(), [...affine(X, true), ...affine(X, true)]);
});
