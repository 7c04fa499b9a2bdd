import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { maxError, randomValues, requireWasmBlas, runOn } from "../test_util.ts";

const TOLERANCE = 1e-4;

interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]];
  dilations: number | [number, number];
}

const CASES: Case[] = [
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same", dilations: 1 },
  { x: [2, 9, 7, 2], filter: [3, 2, 2, 5], strides: 1, pad: "valid", dilations: 1 },
  { x: [3, 10, 11, 4], filter: [3, 3, 4, 2], strides: [2, 3], pad: "same", dilations: 1 },
  { x: [1, 9, 9, 2], filter: [5, 5, 2, 3], strides: 2, pad: "valid", dilations: 1 },
  { x: [2, 6, 5, 1], filter: [2, 3, 1, 3], strides: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]], dilations: 1 },
  { x: [2, 7, 7, 3], filter: [1, 1, 3, 6], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 7, 7, 3], filter: [1, 1, 3, 6], strides: 2, pad: "same", dilations: 1 },
  { x: [1, 28, 28, 1], filter: [5, 5, 1, 8], strides: 1, pad: "same", dilations: 1 },
  // Unpadded stride-1 convolutions with more channels, as in the benchmark's conv net.
  { x: [3, 9, 8, 8], filter: [3, 3, 8, 5], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 6, 7, 16], filter: [2, 3, 16, 4], strides: 1, pad: "valid", dilations: 1 },
  { x: [2, 5, 5, 9], filter: [1, 4, 9, 3], strides: 1, pad: [[0, 0], [0, 0], [0, 0], [0, 0]], dilations: 1 },
];

const DILATED: Case[] = [
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 3], strides: 1, pad: "same", dilations: 2 },
  { x: [1, 11, 10, 3], filter: [2, 3, 3, 2], strides: 1, pad: "valid", dilations: [2, 3] },
];

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function inputs(c: Case, seed: number): { x: tf.Tensor4D; filter: tf.Tensor4D } {
  return {
    x: tf.tensor4d(randomValues(size(c.x), seed), c.x),
    filter: tf.tensor4d(randomValues(size(c.filter), seed + 1), c.filter),
  };
}

async function compare(label: string, compute: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const expected = await runOn("cpu", compute);
  const actual = await runOn("wasm-blas", compute);
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const error = maxError(actual[i]!, expected[i]!);
    assert.ok(error < TOLERANCE, `${label}, output ${i}: max error ${error}`);
  }
}

Deno.test("Conv2D on wasm-blas matches cpu for strides, padding and dilations", async () => {
  await requireWasmBlas();
  for (const [index, c] of [...CASES, ...DILATED].entries()) {
    await compare(JSON.stringify(c), () => {
      const { x, filter } = inputs(c, index);
      return tf.conv2d(x, filter, c.strides, c.pad, "NHWC", c.dilations);
    });
  }
});

Deno.test("FusedConv2D on wasm-blas matches cpu with bias and activations", async () => {
  await requireWasmBlas();
  const activations: tf.fused.Activation[] = ["linear", "relu", "elu", "sigmoid", "leakyrelu", "prelu"];
  for (const [index, activation] of activations.entries()) {
    const c = CASES[index % CASES.length]!;
    const outChannels = c.filter[3];
    await compare(`${activation} ${JSON.stringify(c)}`, () => {
      const { x, filter } = inputs(c, index);
      const bias = tf.tensor1d(randomValues(outChannels, 50 + index));
      const preluActivationWeights = activation === "prelu"
        ? tf.tensor1d(randomValues(outChannels, 60))
        : undefined;
      return tf.fused.conv2d({
        x,
        filter,
        strides: c.strides,
        pad: c.pad,
        bias,
        activation,
        ...(preluActivationWeights === undefined ? {} : { preluActivationWeights }),
        leakyreluAlpha: 0.1,
      });
    });
  }
});

Deno.test("Conv2DBackpropInput and Conv2DBackpropFilter on wasm-blas match cpu", async () => {
  await requireWasmBlas();
  for (const [index, c] of CASES.entries()) {
    await compare(JSON.stringify(c), () => {
      const { x, filter } = inputs(c, index);
      const y = tf.conv2d(x, filter, c.strides, c.pad);
      const dy = tf.tensor4d(
        randomValues(size(y.shape), 100 + index),
        y.shape as [number, number, number, number],
      );
      const dx = tf.conv2dTranspose(dy, filter, c.x, c.strides, c.pad);
      const gradients = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), dy))
      )([x, filter]);
      return [dx, ...gradients];
    });
  }
});

Deno.test("Conv2D gradients on wasm-blas exist, unlike the stock wasm backend's filter gradient", async () => {
  await requireWasmBlas();
  const c = CASES[0]!;
  const gradient = (): tf.Tensor => {
    const { x, filter } = inputs(c, 1);
    return tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, "same")))(filter);
  };
  await tf.setBackend("wasm");
  assert.throws(() => tf.tidy(gradient), /Conv2DBackpropFilter/);
  await compare("filter gradient", gradient);
});
