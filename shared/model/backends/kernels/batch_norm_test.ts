import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";
import { batchNormKernelsAvailable } from "./batch_norm.ts";
import { BatchNormalization } from "../../layers/batch_normalization.ts";
import type { CallContext } from "../../layers/layer.ts";

/** Training-mode output, batch statistics and gradients (x, γ, β) of a BatchNormalization layer. */
function trainingPass(shape: number[], seed: number): tf.Tensor[] {
  const layer = new BatchNormalization({ name: "bn" });
  const channels = shape.at(-1)!;
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.add(tf.mul(tf.tensor(randomValues(size, seed), shape), 3), 0.5);
  const gamma = tf.add(tf.tensor(randomValues(channels, seed + 1)), 1);
  const beta = tf.tensor(randomValues(channels, seed + 2));
  const weights = tf.tensor(randomValues(size, seed + 3), shape);
  const stats: tf.Tensor[] = [];
  const loss = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const ctx = {
      training: true,
      seed: 1,
      step: 0,
      rowOffset: 0,
      batchStats: [],
      logits: new Map(),
    } as unknown as CallContext;
    const y = layer.call([xi], [g, b, tf.zeros([channels]), tf.ones([channels])], ctx);
    for (const s of ctx.batchStats) stats.push(s.mean, s.variance);
    return tf.sum(tf.mul(y, weights)) as tf.Scalar;
  };
  const { value, grads } = tf.valueAndGrads(loss)([x, gamma, beta]);
  return [value, ...stats.slice(0, 2), ...grads];
}

Deno.test("BatchNormalization's fused SIMD passes match the composed operations on cpu", async () => {
  await requireWasmBlas();
  await tf.setBackend("wasm-blas");
  assert.ok(batchNormKernelsAvailable(), "the fused kernels run on wasm-blas");
  for (const [index, shape] of [[7, 5], [64, 512], [3, 4, 4, 6], [2, 3], [33, 13]].entries()) {
    const expected = await runOn("cpu", () => trainingPass(shape, index * 10));
    const actual = await runOn("wasm-blas", () => trainingPass(shape, index * 10));
    const names = ["loss", "mean", "variance", "dx", "dgamma", "dbeta"];
    expected.forEach((e, k) => {
      const error = maxError(actual[k]!, e) / Math.max(1, ...Array.from(e, Math.abs));
      assert.ok(error < 1e-5, `[${shape}] ${names[k]}: relative error ${error}`);
    });
  }
});
