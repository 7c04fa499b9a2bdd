import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { requireWasmBlas, runOn } from "../test_util.ts";

Deno.test("Slice on wasm-blas refuses a window past the end instead of reading garbage", async () => {
  await requireWasmBlas();
  await assert.rejects(
    () => runOn("wasm-blas", () => tf.slice(tf.tensor1d([1, 2, 3, 4]), 2, 5)),
    /overflow|out of bounds|must be/i,
  );
});

Deno.test("Slice on wasm-blas matches cpu inside the bounds", async () => {
  await requireWasmBlas();
  const make = () => tf.slice(tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), [1, 0], [2, -1]);
  const [expected] = await runOn("cpu", make);
  const [actual] = await runOn("wasm-blas", make);
  assert.deepEqual([...actual!], [...expected!]);
});
