import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { randomValues, requireWasmBlas, runOn } from "../test_util.ts";

/** d/dx Σ relu(x)·w at x with zeros, negatives, a NaN and an odd length (a SIMD tail). */
function reluGradient(): tf.Tensor {
  const values = randomValues(4 * 9 + 3, 5);
  values[0] = 0;
  values[1] = -0;
  values[2] = Number.NaN;
  values[7] = -1e-30;
  const x = tf.tensor(values, [values.length]);
  const w = tf.tensor(randomValues(values.length, 6), [values.length]);
  return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.relu(input), w)))(x);
}

Deno.test("ReLU's gradient on wasm-blas is one fused kernel with cpu's values, NaN included", async () => {
  await requireWasmBlas();
  const [expected] = await runOn("cpu", reluGradient);
  const [actual] = await runOn("wasm-blas", reluGradient);
  assert.deepEqual(Array.from(actual!), Array.from(expected!));
  assert.ok(Number.isNaN(actual![2]!), "a NaN input passes NaN back");
  await tf.setBackend("wasm-blas");
  const kernels = (await tf.profile(() => reluGradient())).kernels.map((k) => k.name);
  assert.ok(kernels.includes("ShoalReluGrad"), kernels.join(" "));
  assert.ok(!kernels.includes("Step"), kernels.join(" "));
});
