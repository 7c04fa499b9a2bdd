import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";
import { tileInto } from "./tile.ts";

const CASES: { shape: number[]; reps: number[] }[] = [
  { shape: [5], reps: [3] },
  { shape: [1, 1, 1, 512], reps: [64, 1, 1, 1] },
  { shape: [2, 3], reps: [2, 3] },
  { shape: [3, 1, 4], reps: [1, 5, 2] },
  { shape: [2, 3, 2, 2], reps: [3, 1, 2, 1] },
  { shape: [4, 2], reps: [1, 1] },
  { shape: [2, 3], reps: [0, 2] },
  { shape: [7, 3], reps: [5, 1] },
];

Deno.test("Tile on wasm-blas matches cpu for ranks 1 to 4, unit and zero reps", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    const values = randomValues(c.shape.reduce((a, b) => a * b, 1), index + 1);
    const make = () => tf.tile(tf.tensor(values, c.shape), c.reps);
    const [expected] = await runOn("cpu", make);
    const [actual] = await runOn("wasm-blas", make);
    assert.equal(actual!.length, expected!.length, `case ${index}`);
    assert.equal(maxError(actual!, expected!), 0, `case ${index}: ${JSON.stringify(c)}`);
  }
});

Deno.test("Tile on wasm-blas keeps int32 tensors on the stock kernel", async () => {
  await requireWasmBlas();
  await tf.setBackend("wasm-blas");
  const out = tf.tile(tf.tensor([1, 2], [2], "int32"), [3]);
  assert.equal(out.dtype, "int32");
  assert.deepEqual(Array.from(out.dataSync()), [1, 2, 1, 2, 1, 2]);
  out.dispose();
});

Deno.test("tileInto repeats a row block by doubling copies", () => {
  const out = new Float32Array(12);
  tileInto(Float32Array.from([1, 2, 3]), [1, 3], [4, 1], out);
  assert.deepEqual(Array.from(out), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
});

Deno.test("The BatchNormalization gradient (which tiles) is the same on wasm-blas and cpu", async () => {
  await requireWasmBlas();
  const x = randomValues(16 * 8, 3);
  const gamma = randomValues(8, 4);
  const beta = randomValues(8, 5);
  const grad = () => {
    const xt = tf.tensor(x, [16, 8]);
    const g = tf.tensor(gamma);
    const f = (a: tf.Tensor, s: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0]);
      return tf.sum(tf.square(tf.batchNorm(a, mean, variance, tf.tensor(beta), s, 1e-3)).mul(tf.range(0, 8)));
    };
    return tf.grads(f)([xt, g]);
  };
  const expected = await runOn("cpu", grad);
  const actual = await runOn("wasm-blas", grad);
  for (let i = 0; i < 2; i++) assert.ok(maxError(actual[i]!, expected[i]!) < 1e-4, `gradient ${i}`);
});
