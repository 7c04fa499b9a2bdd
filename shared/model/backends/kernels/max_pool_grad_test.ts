import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";

interface Case {
  x: [number, number, number, number];
  filter: number | [number, number];
  strides: number | [number, number];
  pad: "same" | "valid" | number;
}

const CASES: Case[] = [
  { x: [2, 8, 8, 3], filter: 2, strides: 2, pad: "valid" },
  { x: [2, 9, 7, 4], filter: 2, strides: 2, pad: "valid" },
  { x: [2, 9, 7, 4], filter: 2, strides: 2, pad: "same" },
  { x: [1, 10, 11, 2], filter: 3, strides: 1, pad: "same" },
  { x: [3, 10, 11, 5], filter: [3, 2], strides: [2, 1], pad: "valid" },
  { x: [1, 7, 7, 2], filter: 3, strides: 2, pad: 1 },
];

/** The gradient of `sum(maxPool(x) * weights)` with respect to `x`. */
function poolGradient(c: Case, x: tf.Tensor4D, seed: number): tf.Tensor {
  const outShape = tf.maxPool(x, c.filter, c.strides, c.pad).shape;
  const weights = tf.tensor(randomValues(outShape.reduce((a, b) => a * b, 1), seed), outShape);
  return tf.grad((input: tf.Tensor) =>
    tf.sum(tf.mul(tf.maxPool(input as tf.Tensor4D, c.filter, c.strides, c.pad), weights))
  )(
    x,
  );
}

async function compare(label: string, compute: () => tf.Tensor): Promise<void> {
  const [expected] = await runOn("cpu", compute);
  const [actual] = await runOn("wasm-blas", compute);
  const error = maxError(actual!, expected!);
  assert.ok(error < 1e-6, `${label}: max error ${error}`);
}

Deno.test("MaxPoolGrad on wasm-blas matches cpu for window sizes, strides and padding", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    await compare(JSON.stringify(c), () => {
      const x = tf.tensor4d(randomValues(c.x.reduce((a, b) => a * b, 1), index), c.x);
      return poolGradient(c, x, index + 100);
    });
  }
});

Deno.test("MaxPoolGrad on wasm-blas sends a tied window's gradient to its first largest value only", async () => {
  await requireWasmBlas();
  const c: Case = { x: [1, 4, 4, 2], filter: 2, strides: 2, pad: "valid" };
  // Channel 0: every window holds one value four times; channel 1: the maximum sits last.
  const values = new Float32Array(32);
  for (let p = 0; p < 16; p++) {
    values[2 * p] = 0.5;
    values[2 * p + 1] = p;
  }
  const compute = () => poolGradient(c, tf.tensor4d(values, c.x), 7);
  await compare("ties", compute);
  const [grad] = await runOn("wasm-blas", compute);
  const nonZero = [...grad!].map((v, i) => [v, i] as const).filter(([v]) => v !== 0).map(([, i]) => i);
  // Pixels (0,0), (0,2), (2,0), (2,2) for channel 0 and (1,1), (1,3), (3,1), (3,3) for channel 1.
  assert.deepEqual(nonZero, [0, 4, 11, 15, 16, 20, 27, 31]);
});
