import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";
import type { DepthwiseConv2DOptions } from "./depthwise_conv2d.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => ((s = (s * 1103515245 + 12345) % 2147483648) % 2000) / 1000 - 1,
  );
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/**
 * The depthwise kernel `[h, w, c, m]` as a full convolution kernel `[h, w, c, c·m]` that is zero
 * except where output channel `c·m + j` reads input channel `c`: a depthwise convolution by definition.
 */
function blockDiagonal(kernel: Float32Array, [h, w, c, m]: number[]): tf.Tensor4D {
  const full = new Float32Array(h! * w! * c! * c! * m!);
  for (let tap = 0; tap < h! * w!; tap++) {
    for (let ch = 0; ch < c!; ch++) {
      for (let j = 0; j < m!; j++) {
        full[(tap * c! + ch) * c! * m! + ch * m! + j] = kernel[(tap * c! + ch) * m! + j]!;
      }
    }
  }
  return tf.tensor4d(full, [h!, w!, c!, c! * m!]);
}

const CASES: { opts: DepthwiseConv2DOptions; kernel: [number, number] }[] = [
  { kernel: [3, 3], opts: {} },
  { kernel: [3, 2], opts: { strides: 2, padding: "same", depthMultiplier: 2 } },
  { kernel: [2, 3], opts: { dilationRate: [2, 3], depthMultiplier: 3, padding: "same" } },
  { kernel: [3, 3], opts: { dilationRate: 2 } },
];

Deno.test("DepthwiseConv2D is a convolution of each channel with its own filters (strides, padding, dilation)", () => {
  for (const c of CASES) {
    const input = new Input({ shape: [9, 10, 2] });
    const layer = new layers.DepthwiseConv2D(c.kernel, { ...c.opts, name: "dw" });
    const out = layer.apply(input);
    const [kernelSpec, biasSpec] = layer.weightSpecs;
    const m = c.opts.depthMultiplier ?? 1;
    assert.deepEqual(kernelSpec!.shape, [...c.kernel, 2, m]);
    assert.deepEqual(biasSpec!.shape, [2 * m]);
    const kernel = values(kernelSpec!.shape.reduce((a, b) => a * b, 1), 3);
    const bias = values(2 * m, 4);
    const x = tf.tensor4d(values(2 * 9 * 10 * 2, 5), [2, 9, 10, 2]);
    const y = layer.call([x], [tf.tensor(kernel, kernelSpec!.shape), tf.tensor(bias)], context());
    const d = layer.dilationRate;
    const reference = tf.add(
      tf.conv2d(x, blockDiagonal(kernel, [...kernelSpec!.shape]), layer.strides, layer.padding, "NHWC", d),
      tf.tensor(bias),
    );
    assert.deepEqual(y.shape.slice(1), out.shape, `output shape of ${JSON.stringify(c)}`);
    assert.ok(maxDiff(y, reference) < 1e-5, `${JSON.stringify(c)}: ${maxDiff(y, reference)}`);
  }
});

Deno.test("SeparableConv2D is its depthwise convolution, then a 1×1 convolution, then bias and activation", () => {
  const input = new Input({ shape: [8, 7, 3] });
  const layer = new layers.SeparableConv2D(5, 3, { depthMultiplier: 2, strides: 2, activation: "relu" });
  assert.deepEqual(layer.apply(input).shape, [3, 3, 5]);
  assert.deepEqual(
    layer.weightSpecs.map((s) => [s.name, s.shape]),
    [["depthwise_kernel", [3, 3, 3, 2]], ["pointwise_kernel", [1, 1, 6, 5]], ["bias", [5]]],
  );
  const [dk, pk, b] = layer.weightSpecs.map((s, i) =>
    tf.tensor(values(s.shape.reduce((p, q) => p * q, 1), i), [...s.shape])
  );
  const x = tf.tensor4d(values(2 * 8 * 7 * 3, 9), [2, 8, 7, 3]);
  const y = layer.call([x], [dk!, pk!, b!], context());
  const reference = tf.relu(
    tf.add(
      tf.conv2d(tf.depthwiseConv2d(x, dk as tf.Tensor4D, 2, "valid"), pk as tf.Tensor4D, 1, "valid"),
      b!,
    ),
  );
  assert.ok(maxDiff(y, reference) < 1e-5);
});

Deno.test("DepthwiseConv2D and SeparableConv2D write Keras 3's defaults in their configs", () => {
  const depthwise = new layers.DepthwiseConv2D(3, { name: "d" });
  const separable = new layers.SeparableConv2D(8, [3, 5], { name: "s" });
  const glorot = {
    module: "keras.initializers",
    class_name: "GlorotUniform",
    config: { seed: null },
    registered_name: null,
  };
  const window = { strides: [1, 1], padding: "valid", data_format: "channels_last", dilation_rate: [1, 1] };
  const common = { activation: "linear", use_bias: true, activity_regularizer: null, bias_regularizer: null };
  assert.deepEqual(
    { ...depthwise.getConfig(), bias_initializer: undefined, dtype: undefined },
    {
      name: "d",
      trainable: true,
      dtype: undefined,
      depth_multiplier: 1,
      kernel_size: [3, 3],
      ...window,
      ...common,
      depthwise_initializer: glorot,
      bias_initializer: undefined,
      depthwise_regularizer: null,
      depthwise_constraint: null,
      bias_constraint: null,
    },
  );
  const config = separable.getConfig();
  assert.equal(config.filters, 8);
  assert.deepEqual(config.kernel_size, [3, 5]);
  assert.deepEqual(config.pointwise_initializer, glorot);
  assert.equal(config.depth_multiplier, 1);
  assert.equal(config.pointwise_constraint, null);
});

Deno.test("DepthwiseConv2D and SeparableConv2D refuse bad settings with the value and the fix", () => {
  assert.throws(
    () => new layers.DepthwiseConv2D(3, { strides: 2, dilationRate: 2 }),
    /both strides=\[2,2\] and dilationRate=\[2,2\] above 1: use one or the other/,
  );
  assert.throws(() => new layers.DepthwiseConv2D(3, { depthMultiplier: 0 }), /depthMultiplier=0/);
  assert.throws(
    () => new layers.SeparableConv2D(0, 3),
    /filters must be a positive integer: received filters=0/,
  );
  assert.throws(() => new layers.SeparableConv2D(4, [3, 0]), /kernelSize=\[3,0\]/);
  assert.throws(
    () => new layers.DepthwiseConv2D(3).apply(new Input({ shape: [8, 3] })),
    /expected ndim=4 \(batch, height, width, channels\), found ndim=3/,
  );
});
