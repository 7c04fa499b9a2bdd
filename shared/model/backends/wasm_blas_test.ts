import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "./test_util.ts";
import { wasmBinaryDirectory } from "./wasm_blas.ts";

const TOLERANCE = 1e-4;

function variable(shape: number[], seed: number, scale: number): tf.Tensor {
  return tf.mul(tf.tensor(randomValues(shape.reduce((a, b) => a * b, 1), seed), shape), scale);
}

function oneHot(batch: number, classes: number): tf.Tensor {
  return tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 7) % classes), "int32"), classes);
}

/** Loss gradients of an MLP with fused dense layers (bias + relu), in the order of its parameters. */
function mlpGradients(): tf.Tensor[] {
  const sizes = [20, 32, 16, 5];
  const params: tf.Tensor[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    params.push(variable([sizes[i]!, sizes[i + 1]!], i, 0.3), variable([sizes[i + 1]!], 10 + i, 0.1));
  }
  const x = variable([8, sizes[0]!], 99, 1);
  const labels = oneHot(8, sizes.at(-1)!);
  const loss = (...weights: tf.Tensor[]) => {
    let h = x;
    for (let i = 0; i < weights.length; i += 2) {
      const last = i + 2 === weights.length;
      h = tf.fused.matMul({
        a: h,
        b: weights[i]!,
        bias: weights[i + 1]!,
        activation: last ? "linear" : "relu",
      });
    }
    return tf.losses.softmaxCrossEntropy(labels, h) as tf.Scalar;
  };
  return tf.grads(loss)(params);
}

/** Loss gradients of Conv2D(relu) → MaxPool → Conv2D(stride 2) → Dense, in the order of its parameters. */
function convNetGradients(): tf.Tensor[] {
  const params = [
    variable([3, 3, 2, 4], 1, 0.4),
    variable([4], 2, 0.1),
    variable([3, 3, 4, 6], 3, 0.3),
    variable([2 * 2 * 6, 3], 4, 0.3),
    variable([3], 5, 0.1),
  ];
  const x = variable([4, 9, 9, 2], 6, 1) as tf.Tensor4D;
  const labels = oneHot(4, 3);
  const loss = (f1: tf.Tensor, b1: tf.Tensor, f2: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => {
    let h = tf.relu(tf.add(tf.conv2d(x, f1 as tf.Tensor4D, 1, "same"), b1)) as tf.Tensor4D;
    h = tf.maxPool(h, 2, 2, "valid");
    h = tf.conv2d(h, f2 as tf.Tensor4D, 2, "same");
    const logits = tf.add(tf.matMul(tf.reshape(h, [4, -1]), w), b);
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  };
  return tf.grads(loss as (...args: tf.Tensor[]) => tf.Scalar)(params);
}

Deno.test("MLP loss gradients on wasm-blas match cpu", async () => {
  await requireWasmBlas();
  const expected = await runOn("cpu", mlpGradients);
  const actual = await runOn("wasm-blas", mlpGradients);
  assert.equal(actual.length, 6);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(maxError(actual[i]!, expected[i]!) < TOLERANCE, `parameter ${i}`);
    assert.ok(expected[i]!.some((v) => v !== 0), `parameter ${i} has a zero gradient`);
  }
});

Deno.test("conv net loss gradients on wasm-blas match cpu", async () => {
  await requireWasmBlas();
  const expected = await runOn("cpu", convNetGradients);
  const actual = await runOn("wasm-blas", convNetGradients);
  assert.equal(actual.length, 5);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(maxError(actual[i]!, expected[i]!) < TOLERANCE, `parameter ${i}`);
    assert.ok(expected[i]!.some((v) => v !== 0), `parameter ${i} has a zero gradient`);
  }
});

Deno.test("wasm-blas keeps the stock wasm kernels it does not replace, on its own heap", async () => {
  await requireWasmBlas();
  const compute = () => tf.softmax(tf.sub(variable([3, 4], 1, 2), tf.scalar(0.5)));
  const [expected] = await runOn("wasm", compute);
  const [actual] = await runOn("wasm-blas", compute);
  assert.ok(maxError(actual!, expected!) < 1e-6);
  // A tensor made on wasm and read on wasm-blas after switching moves across the two heaps.
  await tf.setBackend("wasm");
  const made = tf.tensor1d([1, -2, 3]);
  await tf.setBackend("wasm-blas");
  assert.deepEqual(Array.from(tf.relu(made).dataSync()), [1, 0, 3]);
  made.dispose();
});

Deno.test("wasmBinaryDirectory points at the folder holding tfjs-backend-wasm.wasm", () => {
  const directory = wasmBinaryDirectory();
  assert.ok(directory.endsWith("/"));
  assert.ok(Deno.statSync(`${directory}tfjs-backend-wasm.wasm`).isFile);
});

Deno.test("a clone on wasm-blas shares its source's memory and outlives it", async () => {
  await requireWasmBlas();
  await tf.setBackend("wasm-blas");
  const before = tf.memory().numDataBuffers;
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const copy = tf.clone(x);
  assert.equal(tf.memory().numDataBuffers - before, 1, "one buffer for both tensors");
  x.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3, 4]);
  const y = tf.add(copy, 1);
  assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3, 4], "a kernel does not write its input");
  assert.deepEqual(Array.from(y.dataSync()), [2, 3, 4, 5]);
  tf.dispose([copy, y]);
  assert.equal(tf.memory().numDataBuffers, before, "the buffer is freed with its last tensor");
  const strings = tf.clone(tf.tensor(["a", "b"]));
  assert.deepEqual(strings.dataSync(), ["a", "b"]);
});
