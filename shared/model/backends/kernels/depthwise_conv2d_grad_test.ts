import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";

interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: "same" | "valid";
}

const CASES: Case[] = [
  { x: [2, 6, 6, 3], filter: [3, 3, 3, 1], strides: 1, pad: "valid" },
  { x: [2, 7, 5, 3], filter: [3, 3, 3, 2], strides: 1, pad: "same" },
  { x: [3, 9, 8, 4], filter: [3, 2, 4, 3], strides: 2, pad: "same" },
  { x: [1, 9, 7, 2], filter: [2, 3, 2, 1], strides: [2, 1], pad: "valid" },
  { x: [2, 5, 5, 1], filter: [5, 5, 1, 4], strides: 1, pad: "same" },
];

/** The value and the gradients of `sum(depthwiseConv2d(x, filter) * weights)` for x and filter. */
function depthwise(c: Case, index: number): tf.Tensor[] {
  const x = tf.tensor4d(randomValues(c.x.reduce((a, b) => a * b, 1), index), c.x);
  const filter = tf.tensor4d(randomValues(c.filter.reduce((a, b) => a * b, 1), index + 50), c.filter);
  const y = tf.depthwiseConv2d(x, filter, c.strides, c.pad);
  const weights = tf.tensor(randomValues(y.size, index + 100), y.shape);
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), weights))
  )([x, filter]);
  return [y, ...grads];
}

Deno.test("the depthwise convolution and both its gradients on wasm-blas match cpu", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    const expected = await runOn("cpu", () => depthwise(c, index));
    const actual = await runOn("wasm-blas", () => depthwise(c, index));
    for (const [k, what] of ["forward", "dx", "dfilter"].entries()) {
      const error = maxError(actual[k]!, expected[k]!);
      assert.ok(error < 1e-5, `${JSON.stringify(c)} ${what}: max error ${error}`);
    }
  }
});
