/**
 * Every layer added for Keras's sequence, attention, residual and separable-convolution models, and
 * recurrent layers' returned states, in five small models: a model saved by Shoal loads back through the
 * Keras-load path with the same predictions and Keras's weight groups, and every trainable weight gets
 * the same gradient on the plain `cpu` backend as on wasm-blas (whose custom kernels these layers use).
 */
import assert from "node:assert/strict";
import { Input, layers, Model, models, Sequential, tf } from "../mod.ts";
import { Engine, initBackend, type Network } from "../shared/model/mod.ts";
import { readKerasArchive } from "../shared/io/keras/mod.ts";

function randomInts(n: number, max: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) % max);
}

function randomFloats(n: number, seed: number): Float32Array {
  return Float32Array.from(randomInts(n, 2000, seed), (v) => v / 1000 - 1);
}

function textModel(): Model {
  return new Sequential([
    new layers.Embedding(20, 4, { inputShape: [6] }),
    new layers.SimpleRNN(5, { returnSequences: true }),
    new layers.GRU(4, { resetAfter: false, returnSequences: true, goBackwards: true }),
    new layers.Bidirectional(new layers.LSTM(3, { returnSequences: true }), { mergeMode: "ave" }),
    new layers.Bidirectional(new layers.GRU(3)),
    new layers.Dense(2, { activation: "softmax" }),
  ], { seed: 3 });
}

function imageModel(): Model {
  const input = new Input({ shape: [6, 6, 2] });
  const padded = new layers.ZeroPadding2D({ padding: [[1, 0], [0, 1]] }).apply(input);
  const a = new layers.Conv2D(3, 3, { padding: "same" }).apply(padded);
  const b = new layers.Conv2D(3, 1).apply(padded);
  const merged = new layers.Average().apply([
    new layers.Add().apply([a, b]),
    new layers.Subtract().apply([a, b]),
    new layers.Multiply().apply([a, b]),
  ]);
  const act = new layers.ReLU({ maxValue: 6, negativeSlope: 0.1, threshold: 0.05 }).apply(merged);
  const up = new layers.UpSampling2D({ size: [2, 1] }).apply(act);
  const pooled = new layers.AveragePooling2D({ poolSize: 2, padding: "same" }).apply(up);
  const left = new layers.GlobalMaxPooling2D().apply(pooled);
  const right = new layers.GlobalAveragePooling2D().apply(pooled);
  const flat = new layers.Reshape([-1]).apply(new layers.Concatenate().apply([left, right]));
  return new Model({
    inputs: input,
    outputs: new layers.Dense(2, { activation: "softmax" }).apply(flat),
    seed: 4,
  });
}

function separableModel(): Model {
  const input = new Input({ shape: [9, 8, 3] });
  const strided = new layers.DepthwiseConv2D(3, { strides: 2, padding: "same", depthMultiplier: 2 }).apply(
    input,
  );
  const dilated = new layers.DepthwiseConv2D([3, 2], { dilationRate: [2, 1], activation: "relu" }).apply(
    input,
  );
  const separable = new layers.SeparableConv2D(4, 3, {
    padding: "same",
    depthMultiplier: 2,
    activation: "elu",
  })
    .apply(strided);
  const wide = new layers.SeparableConv2D(3, [2, 3], { dilationRate: 2, useBias: false }).apply(dilated);
  const merged = new layers.Concatenate().apply([
    new layers.GlobalAveragePooling2D().apply(separable),
    new layers.GlobalMaxPooling2D().apply(wide),
  ]);
  return new Model({
    inputs: input,
    outputs: new layers.Dense(2, { activation: "softmax" }).apply(merged),
    seed: 6,
  });
}

/** A classifier on an LSTM's and a bidirectional GRU's final states (`returnState`). */
function statesModel(): Model {
  const input = new Input({ shape: [6] });
  const embedded = new layers.Embedding(20, 4).apply(input);
  const [sequence, h, c] = new layers.LSTM(5, { returnState: true, returnSequences: true }).apply(embedded);
  const gru = new layers.GRU(3, { returnState: true, goBackwards: true });
  const [, forwardH, backwardH] = new layers.Bidirectional(gru, { mergeMode: "sum" }).apply(sequence!);
  const features = new layers.Concatenate().apply([h!, c!, forwardH!, backwardH!]);
  return new Model({
    inputs: input,
    outputs: new layers.Dense(2, { activation: "softmax" }).apply(features),
    seed: 7,
  });
}

function sequenceModel(): Model {
  const input = new Input({ shape: [10, 3] });
  const conv = new layers.Conv1D(8, 3, { padding: "causal", activation: "silu" }).apply(input);
  const pooled = new layers.AveragePooling1D({ poolSize: 2 }).apply(conv);
  const more = new layers.MaxPooling1D({ poolSize: 2, strides: 1, padding: "same" }).apply(pooled);
  const norm = new layers.LayerNormalization().apply(more);
  const attention = new layers.MultiHeadAttention({ numHeads: 2, keyDim: 4, valueDim: 3 }).apply([
    norm,
    norm,
  ]);
  const cross = new layers.MultiHeadAttention({ numHeads: 1, keyDim: 2, outputShape: 5 }).apply([
    attention,
    norm,
    more,
  ]);
  const summary = new layers.GlobalAveragePooling1D().apply(
    new layers.Dense(4, { activation: "gelu" }).apply(cross),
  );
  const peak = new layers.GlobalMaxPooling1D().apply(cross);
  return new Model({
    inputs: input,
    outputs: new layers.Dense(3, { activation: "softmax" }).apply(
      new layers.Concatenate().apply([summary, peak]),
    ),
    seed: 5,
  });
}

const CASES: { name: string; make: () => Model; x: () => tf.Tensor; groups: string[] }[] = [
  {
    name: "text",
    make: textModel,
    x: () => tf.tensor(randomInts(4 * 6, 20, 1), [4, 6], "int32"),
    groups: [
      "layers/simple_rnn/cell",
      "layers/gru/cell",
      "layers/bidirectional/forward_layer/cell",
      "layers/bidirectional_1/backward_layer/cell",
    ],
  },
  {
    name: "image",
    make: imageModel,
    x: () => tf.tensor(randomFloats(4 * 72, 2), [4, 6, 6, 2]),
    groups: ["layers/conv2d"],
  },
  {
    name: "separable",
    make: separableModel,
    x: () => tf.tensor(randomFloats(4 * 216, 6), [4, 9, 8, 3]),
    groups: ["layers/depthwise_conv2d", "layers/depthwise_conv2d_1", "layers/separable_conv2d"],
  },
  {
    name: "states",
    make: statesModel,
    x: () => tf.tensor(randomInts(4 * 6, 20, 8), [4, 6], "int32"),
    groups: ["layers/lstm/cell", "layers/bidirectional/forward_layer/cell"],
  },
  {
    name: "sequence",
    make: sequenceModel,
    x: () => tf.tensor(randomFloats(4 * 30, 3), [4, 10, 3]),
    groups: [
      "layers/conv1d",
      "layers/layer_normalization",
      "layers/multi_head_attention/query_dense",
      "layers/multi_head_attention_1/output_dense",
    ],
  },
];

for (const c of CASES) {
  Deno.test(`The ${c.name} model of the new layers, saved by Shoal, loads back with the same predictions`, async () => {
    const model = c.make();
    model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy" });
    const x = c.x();
    await model.fit(x, tf.tensor([0, 1, 1, 0]), { epochs: 1, batchSize: 4, verbose: 0 });
    const dir = await Deno.makeTempDir({ prefix: "shoal-layers-" });
    try {
      const path = `${dir}/model.keras`;
      await model.save(path);
      const archive = await readKerasArchive(path);
      for (const g of c.groups) {
        assert.ok(archive.weights.layers.get(g)?.vars.length, `group ${g} has variables`);
      }
      const loaded = await models.loadModel(path);
      const before = (await model.predict(x, { verbose: 0 })).dataSync();
      const after = (await loaded.predict(x, { verbose: 0 })).dataSync();
      assert.deepEqual(Array.from(after), Array.from(before));
      assert.deepEqual(loaded.network.toConfig(), model.network.toConfig());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`The ${c.name} model's gradients agree on cpu and wasm-blas, and reach every weight`, async () => {
    const network: Network = c.make().network;
    const engine = new Engine(network, { loss: "sparse_categorical_crossentropy", metrics: [], seed: 0 });
    const x = c.x();
    const batch = {
      inputs: [{ data: Float32Array.from(x.dataSync()), shape: [...x.shape] }],
      y: { data: Float32Array.of(0, 1, 2 % network.outputShapes[0]![0]!, 1), shape: [4] },
    };
    const grads: Float32Array[] = [];
    for (const backend of ["cpu", "wasm-blas"] as const) {
      await initBackend(backend);
      grads.push(engine.trainSlice(network.params, network.state, batch, 0, 0).grads);
    }
    await initBackend("auto");
    for (const e of network.paramLayout) {
      const cpu = grads[0]!.subarray(e.offset, e.offset + e.size);
      const wasm = grads[1]!.subarray(e.offset, e.offset + e.size);
      assert.ok(cpu.some((v) => v !== 0), `${e.path} gets a gradient`);
      for (let i = 0; i < cpu.length; i++) {
        assert.ok(
          Math.abs(cpu[i]! - wasm[i]!) <= 1e-5 * (1 + Math.abs(cpu[i]!)),
          `${e.path}[${i}]: ${cpu[i]} vs ${wasm[i]}`,
        );
      }
    }
  });
}
