import assert from "node:assert/strict";
import { Input, layers, Model, Sequential, tf } from "../../mod.ts";
import { readKerasArchive } from "../io/keras/archive.ts";
import { Network } from "./network.ts";

/** The chapter's Fashion-MNIST classifier: 784-512-256-128-10 with BatchNorm and Dropout. */
function chapterModel(seed = 1): Sequential {
  return new Sequential([
    new layers.Dense(512, { activation: "relu", inputShape: [784] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(256, { activation: "relu" }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed });
}

const CHAPTER_NAMES = [
  "dense",
  "batch_normalization",
  "dropout",
  "dense_1",
  "batch_normalization_1",
  "dropout_1",
  "dense_2",
  "dropout_2",
  "dense_3",
];

function rows(n: number, width: number, seed: number): tf.Tensor2D {
  return tf.randomUniform([n, width], 0, 1, "float32", seed) as tf.Tensor2D;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

Deno.test("Layers get Keras auto names per class: dense, dense_1, batch_normalization, …", () => {
  const model = chapterModel();
  assert.deepEqual(model.layers.map((l) => l.name), CHAPTER_NAMES);
  assert.equal(model.network.layers[0]!.name, "input_layer");
  assert.equal(model.name, "sequential");
  // Given names are kept and auto names skip them.
  const named = new Sequential([
    new layers.Dense(4, { inputShape: [3], name: "dense_1" }),
    new layers.Dense(2),
    new layers.Dense(2),
  ]);
  assert.deepEqual(named.layers.map((l) => l.name), ["dense_1", "dense", "dense_2"]);
});

Deno.test("The chapter model has 570,506 parameters, 568,970 trainable", () => {
  const model = chapterModel();
  assert.equal(model.countParams(), 570_506);
  assert.equal(model.network.params.length, 568_970);
  assert.equal(model.network.state.length, 1_536);
});

Deno.test("Weights are in Keras get_weights() order, trainable in params and moving statistics in state", () => {
  const net = chapterModel().network;
  const names = net.namedWeights().map((w) => w.name);
  assert.deepEqual(names, [
    "dense/kernel",
    "dense/bias",
    "batch_normalization/gamma",
    "batch_normalization/beta",
    "batch_normalization/moving_mean",
    "batch_normalization/moving_variance",
    "dense_1/kernel",
    "dense_1/bias",
    "batch_normalization_1/gamma",
    "batch_normalization_1/beta",
    "batch_normalization_1/moving_mean",
    "batch_normalization_1/moving_variance",
    "dense_2/kernel",
    "dense_2/bias",
    "dense_3/kernel",
    "dense_3/bias",
  ]);
  assert.deepEqual(net.getWeights().map((w) => w.length), [
    401_408,
    512,
    512,
    512,
    512,
    512,
    131_072,
    256,
    256,
    256,
    256,
    256,
    32_768,
    128,
    1_280,
    10,
  ]);
  assert.deepEqual(net.stateLayout.map((e) => e.path), [
    "batch_normalization/moving_mean",
    "batch_normalization/moving_variance",
    "batch_normalization_1/moving_mean",
    "batch_normalization_1/moving_variance",
  ]);
  // Params are packed in layout order without gaps.
  net.paramLayout.forEach((e, i) =>
    assert.equal(e.offset, i === 0 ? 0 : net.paramLayout[i - 1]!.offset + net.paramLayout[i - 1]!.size)
  );
  // Initial values: glorot kernels within ±sqrt(6/(784+512)), zero biases, BatchNorm ones/zeros.
  const [kernel, bias, gamma, beta, mean, variance] = net.getWeights();
  const limit = Math.sqrt(6 / (784 + 512));
  assert.ok(kernel!.every((v) => Math.abs(v) <= limit) && kernel!.some((v) => v !== 0));
  assert.ok(bias!.every((v) => v === 0) && beta!.every((v) => v === 0) && mean!.every((v) => v === 0));
  assert.ok(gamma!.every((v) => v === 1) && variance!.every((v) => v === 1));
});

Deno.test("The same seed gives the same initial weights; another seed different ones", () => {
  const a = chapterModel(7).network.params,
    b = chapterModel(7).network.params,
    c = chapterModel(8).network.params;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.subarray(0, 100), c.subarray(0, 100));
});

Deno.test("setWeights checks count and sizes, naming the weight", () => {
  const model = new Sequential([new layers.Dense(2, { inputShape: [3] })]);
  assert.throws(() => model.setWeights([new Float32Array(6)]), /the model has 2 weights: received 1/);
  assert.throws(
    () => model.setWeights([new Float32Array(5), new Float32Array(2)]),
    /Cannot set weight dense\/kernel as it has shape \[3,2\] \(6 values\): received 5 values/,
  );
  model.setWeights([Float32Array.from([1, 2, 3, 4, 5, 6]), Float32Array.from([7, 8])]);
  assert.deepEqual(Array.from(model.network.params), [1, 2, 3, 4, 5, 6, 7, 8]);
});

Deno.test("Sequential toConfig → fromConfig gives the same layout and the same predictions", async () => {
  const model = chapterModel(3);
  const config = JSON.parse(JSON.stringify(model.toJSON()));
  assert.equal(config.class_name, "Sequential");
  const net = Network.fromConfig(config, 99);
  const strip = (n: Network) =>
    [...n.paramLayout, ...n.stateLayout].map(({ path, shape, offset, trainable }) => ({
      path,
      shape,
      offset,
      trainable,
    }));
  assert.deepEqual(strip(net), strip(model.network));
  assert.deepEqual(net.layers.map((l) => l.name), model.network.layers.map((l) => l.name));
  const copy = Model.fromNetwork(net, 3);
  copy.setWeights(model.getWeights());
  const x = rows(4, 784, 5);
  const [p, q] = [await model.predict(x, { batchSize: 4 }), await copy.predict(x, { batchSize: 4 })];
  assert.deepEqual(p.shape, [4, 10]);
  assertClose(q.dataSync(), p.dataSync());
});

Deno.test("A Keras 3 written config rebuilds the chapter model with the same layout", async () => {
  const archive = await readKerasArchive(
    new URL("../../tests/fixtures/keras/fashion_mlp.keras", import.meta.url).pathname,
  );
  const net = Network.fromConfig(archive.config);
  const ours = chapterModel().network;
  assert.equal(net.countParams(), 570_506);
  assert.deepEqual(
    net.weightEntries().map((e) => [e.path, e.shape]),
    ours.weightEntries().map((e) => [e.path, e.shape]),
  );
});

Deno.test("Functional two-input model with Concatenate round-trips through its config", async () => {
  const a = new Input({ shape: [3], name: "numeric" });
  const b = new Input({ shape: [2], name: "extra" });
  const h = new layers.Dense(4, { activation: "relu" }).apply(a);
  const joined = new layers.Concatenate().apply([h, b]);
  const out = new layers.Dense(2, { activation: "softmax" }).apply(joined);
  const model = new Model({ inputs: [a, b], outputs: out, name: "two_inputs", seed: 4 });
  assert.deepEqual(model.network.layers.map((l) => l.name), [
    "numeric",
    "extra",
    "dense",
    "concatenate",
    "dense_1",
  ]);
  assert.equal(model.countParams(), 3 * 4 + 4 + 6 * 2 + 2);
  const config = JSON.parse(JSON.stringify(model.toJSON()));
  assert.equal(config.class_name, "Functional");
  assert.deepEqual(config.config.input_layers, [["numeric", 0, 0], ["extra", 0, 0]]);
  assert.deepEqual(config.config.output_layers, ["dense_1", 0, 0]);
  const copy = Model.fromNetwork(Network.fromConfig(config), 4);
  assert.deepEqual(
    copy.network.weightEntries().map((e) => e.path),
    model.network.weightEntries().map((e) => e.path),
  );
  assert.deepEqual(copy.network.inputShapes, [[3], [2]]);
  copy.setWeights(model.getWeights());
  const xs = [rows(5, 3, 1), rows(5, 2, 2)];
  assertClose((await copy.predict(xs)).dataSync(), (await model.predict(xs)).dataSync());
});

Deno.test("summary prints a Keras table with the total parameter count", () => {
  const lines: string[] = [];
  chapterModel().summary((l) => lines.push(l));
  const text = lines.join("\n");
  assert.match(lines[0]!, /^Model: "sequential"$/);
  assert.match(text, /Layer \(type\)\s+┃ Output Shape\s+┃\s+Param #/);
  assert.match(text, /│ dense \(Dense\)\s+│ \(None, 512\)\s+│\s+401,920 │/);
  assert.match(text, /│ batch_normalization \(BatchNormalization\)\s+│ \(None, 512\)\s+│\s+2,048 │/);
  assert.match(text, /│ dense_3 \(Dense\)\s+│ \(None, 10\)\s+│\s+1,290 │/);
  assert.match(text, /Total params: 570,506 \(2\.18 MB\)/);
  assert.match(text, /Trainable params: 568,970 \(2\.17 MB\)/);
  assert.match(text, /Non-trainable params: 1,536 \(6\.00 KB\)/);
});

Deno.test("Layer names must be unique in a model", () => {
  const a = new Input({ shape: [2] });
  const x = new layers.Dense(2, { name: "same" }).apply(a);
  const y = new layers.Dense(2, { name: "same" }).apply(x);
  assert.throws(() => new Model({ inputs: a, outputs: y }), /layer name "same" is used twice/);
});

Deno.test("A frozen layer's weights are initialized in state, outside the trainable params", () => {
  const model = new Sequential([
    new layers.Dense(3, { inputShape: [2], trainable: false }),
    new layers.Dense(1),
  ], { seed: 1 });
  const net = model.network;
  assert.deepEqual(net.paramLayout.map((e) => e.path), ["dense_1/kernel", "dense_1/bias"]);
  assert.deepEqual(net.stateLayout.map((e) => e.path), ["dense/kernel", "dense/bias"]);
  const [frozenKernel, , kernel] = model.getWeights();
  const limit = Math.sqrt(6 / 5);
  assert.ok(frozenKernel!.some((v) => v !== 0) && frozenKernel!.every((v) => Math.abs(v) <= limit));
  assert.ok(kernel!.some((v) => v !== 0));
});

Deno.test("A Sequential config without an InputLayer takes the input shape from its first layer", () => {
  const layer = (name: string, units: number, extra: Record<string, unknown> = {}) => ({
    class_name: "Dense",
    config: { name, units, ...extra },
  });
  const keras2 = Network.fromConfig({
    class_name: "Sequential",
    config: { name: "s", layers: [layer("d", 2, { batch_input_shape: [null, 4] }), layer("e", 1)] },
  });
  assert.deepEqual(keras2.inputShapes, [[4]]);
  assert.equal(keras2.countParams(), 4 * 2 + 2 + 2 + 1);
  const keras3 = Network.fromConfig({
    class_name: "Sequential",
    config: { name: "s", layers: [{ ...layer("d", 2), build_config: { input_shape: [null, 5] } }] },
  });
  assert.deepEqual(keras3.inputShapes, [[5]]);
  assert.throws(
    () => Network.fromConfig({ class_name: "Sequential", config: { name: "s", layers: [layer("d", 2)] } }),
    /config has no input shape/,
  );
});

Deno.test("updateStateFromBatch lets each BatchNormalization update its own moving statistics in state", () => {
  const input = new Input({ shape: [2] });
  const bn = new layers.BatchNormalization({ name: "bn", momentum: 0.5 });
  const network = new Network({ inputs: [input], outputs: [bn.apply(new layers.Dense(2).apply(input))] });
  assert.equal(network.exchangesBetweenSlices, true);
  const before = Float32Array.from(network.params);
  network.updateStateFromBatch([{
    layer: "bn",
    mean: Float32Array.of(2, 4),
    variance: Float32Array.of(3, 5),
  }]);
  const byName = Object.fromEntries(network.namedWeights().map((w) => [w.name, [...w.data]]));
  assert.deepEqual(byName["bn/moving_mean"], [1, 2]);
  assert.deepEqual(byName["bn/moving_variance"], [2, 3]);
  assert.deepEqual(network.params, before);
  assert.throws(
    () =>
      network.updateStateFromBatch([{
        layer: "dense",
        mean: Float32Array.of(0),
        variance: Float32Array.of(0),
      }]),
    /Cannot update the state of layer "dense" from batch statistics/,
  );
  bn.trainable = false;
  assert.equal(network.exchangesBetweenSlices, false);
});
