import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";
import { segmentSumInto } from "./unsorted_segment_sum.ts";

Deno.test("UnsortedSegmentSum on wasm-blas matches cpu, with repeated and unused ids", async () => {
  await requireWasmBlas();
  const ids = [3, 0, 3, 3, 1, 6, 0];
  const values = randomValues(ids.length * 5, 7);
  const make = () => tf.unsortedSegmentSum(tf.tensor(values, [ids.length, 5]), tf.tensor1d(ids, "int32"), 8);
  const [expected] = await runOn("cpu", make);
  const [actual] = await runOn("wasm-blas", make);
  assert.equal(actual!.length, 8 * 5);
  assert.ok(maxError(actual!, expected!) < 1e-6);
});

Deno.test("The gradient of gather (an Embedding's) is the same on wasm-blas and cpu", async () => {
  await requireWasmBlas();
  const table = randomValues(10 * 4, 2);
  const grad = () => {
    const f = (t: tf.Tensor) =>
      tf.sum(tf.square(tf.gather(t, tf.tensor2d([[1, 4, 1], [9, 1, 0]], [2, 3], "int32"))));
    return tf.grad(f)(tf.tensor(table, [10, 4]));
  };
  const [expected] = await runOn("cpu", grad);
  const [actual] = await runOn("wasm-blas", grad);
  assert.ok(maxError(actual!, expected!) < 1e-6);
  assert.ok(expected!.some((v) => v !== 0));
});

Deno.test("segmentSumInto adds rows into their segment and skips ids out of range", () => {
  const out = new Float32Array(4);
  segmentSumInto(Float32Array.from([1, 2, 3, 4, 5, 6]), Int32Array.from([1, 1, 5]), 2, out);
  assert.deepEqual(Array.from(out), [0, 0, 4, 6]);
});
