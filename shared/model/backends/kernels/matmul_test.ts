import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";
import { wasmHeapBackend } from "../wasm_internals.ts";

const TOLERANCE = 1e-4;

interface Case {
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

const CASES: Case[] = [
  { a: [64, 784], b: [784, 33], transposeA: false, transposeB: false },
  { a: [17, 5], b: [17, 9], transposeA: true, transposeB: false },
  { a: [6, 11], b: [7, 11], transposeA: false, transposeB: true },
  { a: [13, 6], b: [9, 13], transposeA: true, transposeB: true },
  { a: [3, 4, 5], b: [3, 5, 6], transposeA: false, transposeB: false },
  { a: [3, 5, 4], b: [3, 6, 5], transposeA: true, transposeB: true },
  { a: [2, 3, 4, 5], b: [5, 7], transposeA: false, transposeB: false },
  { a: [4, 5], b: [2, 3, 5, 7], transposeA: false, transposeB: false },
  { a: [2, 1, 4, 5], b: [3, 5, 2], transposeA: false, transposeB: false },
  { a: [2, 3, 5, 4], b: [1, 2, 5], transposeA: true, transposeB: true },
  { a: [1, 1], b: [1, 1], transposeA: false, transposeB: false },
];

function tensors(c: Case, seed: number): [tf.Tensor, tf.Tensor] {
  const a = tf.tensor(randomValues(c.a.reduce((x, y) => x * y, 1), seed), c.a);
  const b = tf.tensor(randomValues(c.b.reduce((x, y) => x * y, 1), seed + 1), c.b);
  return [a, b];
}

Deno.test("BatchMatMul on wasm-blas matches cpu for transposes, batches and broadcast batches", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    // The reference gets both operands broadcast to the full batch shape beforehand.
    const batch = tf.broadcast_util.assertAndGetBroadcastShape(c.a.slice(0, -2), c.b.slice(0, -2));
    const [expected] = await runOn("cpu", () => {
      const [a, b] = tensors(c, index * 10);
      const fullA = tf.broadcastTo(a, [...batch, ...a.shape.slice(-2)]);
      const fullB = tf.broadcastTo(b, [...batch, ...b.shape.slice(-2)]);
      return tf.matMul(fullA, fullB, c.transposeA, c.transposeB);
    });
    const [actual] = await runOn("wasm-blas", () => {
      const [a, b] = tensors(c, index * 10);
      return tf.matMul(a, b, c.transposeA, c.transposeB);
    });
    assert.ok(maxError(actual!, expected!) < TOLERANCE, `case ${JSON.stringify(c)}`);
  }
});

Deno.test("_FusedMatMul on wasm-blas matches cpu with bias, activations and prelu weights", async () => {
  await requireWasmBlas();
  const activations: tf.fused.Activation[] = [
    "linear",
    "relu",
    "relu6",
    "elu",
    "sigmoid",
    "leakyrelu",
    "prelu",
  ];
  for (const [index, activation] of activations.entries()) {
    for (const c of [CASES[1]!, CASES[5]!, CASES[0]!]) {
      const n = c.transposeB ? c.b.at(-2)! : c.b.at(-1)!;
      const compute = () => {
        const [a, b] = tensors(c, index);
        const bias = tf.tensor1d(randomValues(n, 99 + index));
        const preluActivationWeights = activation === "prelu" ? tf.tensor1d(randomValues(n, 7)) : undefined;
        return tf.fused.matMul({
          a,
          b,
          transposeA: c.transposeA,
          transposeB: c.transposeB,
          bias,
          activation,
          ...(preluActivationWeights === undefined ? {} : { preluActivationWeights }),
          leakyreluAlpha: 0.3,
        });
      };
      const [expected] = await runOn("cpu", compute);
      const [actual] = await runOn("wasm-blas", compute);
      assert.ok(maxError(actual!, expected!) < TOLERANCE, `${activation} ${JSON.stringify(c)}`);
    }
  }
});

Deno.test("_FusedMatMul on wasm-blas broadcasts a scalar bias and a 2-D bias", async () => {
  await requireWasmBlas();
  for (const biasShape of [[1], [5, 1], [1, 7]]) {
    const compute = () => {
      const a = tf.tensor(randomValues(15, 1), [5, 3]);
      const b = tf.tensor(randomValues(21, 2), [3, 7]);
      const bias = tf.tensor(randomValues(biasShape.reduce((x, y) => x * y, 1), 3), biasShape);
      return tf.fused.matMul({ a, b, bias, activation: "relu" });
    };
    const [expected] = await runOn("cpu", compute);
    const [actual] = await runOn("wasm-blas", compute);
    assert.ok(maxError(actual!, expected!) < TOLERANCE, `bias shape [${biasShape}]`);
  }
});

Deno.test("BatchMatMul on wasm-blas stays correct while the wasm heap grows", async () => {
  await requireWasmBlas();
  // Each product allocates a 6 MB output; the heap must grow during the run.
  const compute = () => {
    const a = tf.tensor(randomValues(1200 * 64, 5), [1200, 64]);
    const b = tf.tensor(randomValues(64 * 1300, 6), [64, 1300]);
    return [tf.matMul(a, b), tf.matMul(tf.add(a, 1), b), tf.matMul(a, tf.mul(b, 2))];
  };
  const expected = await runOn("cpu", compute);
  await tf.setBackend("wasm-blas");
  const heapBytes = () => wasmHeapBackend(tf.backend()).wasm.HEAPF32.length * 4;
  const before = heapBytes();
  const actual = await runOn("wasm-blas", compute);
  assert.ok(heapBytes() > before, `the heap should have grown beyond ${before} bytes`);
  for (let i = 0; i < expected.length; i++) assert.ok(maxError(actual[i]!, expected[i]!) < TOLERANCE);
});

Deno.test("BatchMatMul on wasm-blas rejects mismatched inner dimensions with both shapes", async () => {
  await requireWasmBlas();
  await tf.setBackend("wasm-blas");
  assert.throws(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 5]))), /inner|3|4/);
});
