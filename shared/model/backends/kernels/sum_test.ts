import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";

const CASES: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
  { shape: [4, 5, 6, 3], axis: [0, 1, 2], keepDims: false },
  { shape: [4, 5, 6, 3], axis: [2, 0, 1], keepDims: true },
  { shape: [7, 9], axis: 0, keepDims: false },
  { shape: [3, 4, 5], axis: [0, 1], keepDims: true },
  { shape: [3, 4, 5], axis: [1, 2], keepDims: false },
  { shape: [3, 4, 5], axis: [0, 2], keepDims: false },
  { shape: [3, 4, 5], axis: -1, keepDims: false },
  { shape: [3, 4, 5], axis: [0, 1, 2], keepDims: false },
  { shape: [0, 4], axis: 0, keepDims: false },
];

async function shapeOn(backend: string, compute: () => tf.Tensor): Promise<number[]> {
  await tf.setBackend(backend);
  const result = tf.tidy(compute);
  const shape = result.shape;
  tf.dispose(result);
  return shape;
}

Deno.test("Sum on wasm-blas matches cpu over leading, inner, mixed and all axes", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    const compute = () => {
      const size = c.shape.reduce((a, b) => a * b, 1);
      return tf.sum(tf.tensor(randomValues(size, index), c.shape), c.axis, c.keepDims);
    };
    const [expected] = await runOn("cpu", compute);
    const [actual] = await runOn("wasm-blas", compute);
    assert.ok(maxError(actual!, expected!) < 1e-6, `${JSON.stringify(c)}: max error`);
    assert.deepEqual(await shapeOn("wasm-blas", compute), await shapeOn("cpu", compute));
  }
});

Deno.test("Sum on wasm-blas keeps int32 sums over leading axes exact", async () => {
  await requireWasmBlas();
  const compute = () => tf.sum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32"), 0);
  const [actual] = await runOn("wasm-blas", compute);
  assert.deepEqual([...actual!], [9, 12]);
});
