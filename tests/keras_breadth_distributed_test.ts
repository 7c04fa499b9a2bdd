/**
 * The five Keras 3 models beyond the chapter (residual CNN, 1-D conv net, LSTM and bidirectional GRU on
 * token ids, transformer block), loaded from Keras's files and trained on two real worker processes,
 * end with the weights of the same training in one process. The token-id models check that integer
 * inputs reach the workers' Embedding layers intact over the data plane. So do two models of layers
 * that workers rebuild from the coordinator's config: separable convolutions, and recurrent layers'
 * returned states (outputs wired by their index in the config).
 */
import assert from "node:assert/strict";
import { Input, layers, Model, models, tf } from "../mod.ts";
import type { ArrayData } from "../coordinator/data.ts";
import { maxAbsDiff } from "./support/compare.ts";

const FIXTURES = new URL("./fixtures/keras_breadth/", import.meta.url).pathname;

/** 48 rows, batch 16, 2 epochs: 6 steps, each split over the workers. */
const ROWS = 48;
const FIT = { epochs: 2, batchSize: 16, seed: 3, verbose: 0 as const };

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

interface Case {
  name: string;
  /** Rows of the model's input: float features, or token ids below `vocab`. */
  vocab?: number;
  /** Labels for a row's features: a class id, or a regression target. */
  label: (row: Float32Array) => number;
  /** Recompile with this optimizer and sparse categorical cross-entropy, as the note says why. */
  optimizer?: string;
}

const sum = (row: Float32Array) => row.reduce((a, b) => a + b, 0);

const CASES: Case[] = [
  // Trained with SGD here, every weight within 1e-5; with its saved Adam in the test after these.
  { name: "residual_cnn", label: (r) => sum(r) > r.length / 2 ? 1 : 0, optimizer: "sgd" },
  { name: "series_conv1d", label: (r) => sum(r) / r.length * 4 - 2 },
  { name: "text_lstm", vocab: 200, label: (r) => r[0]! < 100 ? 1 : 0 },
  { name: "text_bigru", vocab: 200, label: (r) => r[3]! % 3 },
  // Its own AdamW with a CosineDecay schedule, as Keras saved it.
  { name: "transformer_block", vocab: 100, label: (r) => r[1]! < 50 ? 1 : 0 },
];

async function load(c: Case): Promise<Model> {
  const path = `${FIXTURES}${c.name}.keras`;
  if (!c.optimizer) return await models.loadModel(path);
  const model = await models.loadModel(path, { compile: false });
  model.compile({ optimizer: c.optimizer, loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  return model;
}

/** Float rows, or token ids as an int32 tensor (as a Keras user passes them). */
function dataFor(c: Case, model: Model): { x: ArrayData | tf.Tensor; y: ArrayData } {
  const shape = model.network.inputShapes[0]!;
  const rowSize = shape.reduce((a, b) => a * b, 1);
  const rand = lcg(7);
  const x = new Float32Array(ROWS * rowSize);
  const y = new Float32Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    const row = x.subarray(i * rowSize, (i + 1) * rowSize);
    for (let j = 0; j < rowSize; j++) row[j] = c.vocab ? Math.floor(rand() * c.vocab) : rand();
    y[i] = c.label(row);
  }
  const labels = { data: y, shape: [ROWS] };
  if (c.vocab) return { x: tf.tensor(Int32Array.from(x), [ROWS, ...shape], "int32"), y: labels };
  return { x: { data: x, shape: [ROWS, ...shape] }, y: labels };
}

for (const c of CASES) {
  Deno.test(`${c.name}: 2 worker processes end with the in-process weights`, async () => {
    const local = await load(c);
    const { x, y } = dataFor(c, local);
    const before = local.network.params.slice();
    const localHistory = await local.fit(x, y, FIT);
    assert.ok(maxAbsDiff(local.network.params, before) > 1e-4, "training moves the weights");

    const model = await load(c);
    const history = await model.fit(x, y, { ...FIT, distribute: { workers: 2 } });
    assert.equal(model.lastFit!.workers, 2);
    assert.equal(model.lastFit!.steps, 6);
    const diff = maxAbsDiff(model.network.params, local.network.params);
    assert.ok(diff <= 1e-5, `max abs weight difference ${diff} > 1e-5`);
    const stateDiff = maxAbsDiff(model.network.state, local.network.state);
    assert.ok(stateDiff <= 1e-5, `non-trainable weights differ by ${stateDiff}`);
    const losses = [history.history.loss!, localHistory.history.loss!];
    losses[0]!.forEach((v, i) => assert.ok(Math.abs(v - losses[1]![i]!) <= 1e-5, `loss ${losses}`));
  });
}

/**
 * The paths of bias weights whose layer's output goes straight into BatchNormalization and nowhere
 * else: BatchNormalization subtracts them out, so their true gradient is zero.
 */
function biasesIntoBatchNorm(model: Model): Set<string> {
  const consumers = new Map<string, string[]>();
  for (const node of model.network.nodes) {
    for (const input of node.inputs) {
      const producer = input.node.layer.name ?? "";
      consumers.set(producer, [...consumers.get(producer) ?? [], node.layer.className]);
    }
  }
  return new Set(
    model.network.paramLayout
      .filter((e) => e.name === "bias" && consumers.get(e.layer)?.every((c) => c === "BatchNormalization"))
      .map((e) => e.path),
  );
}

Deno.test("residual_cnn with its saved Adam: 2 worker processes give the in-process predictions and weights, but for the biases BatchNormalization cancels", async () => {
  // Those biases' true gradient is zero: what reaches Adam is rounding noise (~1e-9), summed over
  // two slices in another order than over one batch, and Adam scales any noise up to ~1% of the
  // learning rate per step. They shift what BatchNormalization subtracts out, so predictions agree.
  const c = CASES[0]!;
  const local = await models.loadModel(`${FIXTURES}${c.name}.keras`);
  const { x, y } = dataFor(c, local);
  await local.fit(x, y, FIT);
  const model = await models.loadModel(`${FIXTURES}${c.name}.keras`);
  await model.fit(x, y, { ...FIT, distribute: { workers: 2 } });
  assert.equal(model.lastFit!.workers, 2);
  const cancelled = biasesIntoBatchNorm(model);
  assert.deepEqual([...cancelled].sort(), ["conv2d_1/bias", "conv2d_2/bias"]);
  for (const e of model.network.paramLayout) {
    const part = (m: Model) => m.network.params.subarray(e.offset, e.offset + e.size);
    const diff = maxAbsDiff(part(model), part(local));
    assert.ok(diff <= (cancelled.has(e.path) ? 1e-3 : 1e-5), `${e.path} differs by ${diff}`);
  }
  const stateDiff = maxAbsDiff(model.network.state, local.network.state);
  assert.ok(stateDiff <= 1e-5, `non-trainable weights differ by ${stateDiff}`);
  const predictions = async (m: Model) => (await m.predict(x, { verbose: 0 })).dataSync() as Float32Array;
  const diff = maxAbsDiff(await predictions(model), await predictions(local));
  assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
});

function separableModel(): Model {
  const input = new Input({ shape: [8, 8, 2] });
  const depthwise = new layers.DepthwiseConv2D(3, { depthMultiplier: 2, padding: "same", activation: "relu" })
    .apply(input);
  const separable = new layers.SeparableConv2D(4, 3, { strides: 2 }).apply(depthwise);
  const dilated = new layers.SeparableConv2D(3, 2, { dilationRate: 2 }).apply(depthwise);
  const features = new layers.Concatenate().apply([
    new layers.GlobalAveragePooling2D().apply(separable),
    new layers.GlobalMaxPooling2D().apply(dilated),
  ]);
  return new Model({
    inputs: input,
    outputs: new layers.Dense(2, { activation: "softmax" }).apply(features),
    seed: 2,
  });
}

function statesModel(): Model {
  const input = new Input({ shape: [7] });
  const embedded = new layers.Embedding(30, 4).apply(input);
  const [, h, c] = new layers.LSTM(5, { returnState: true }).apply(embedded);
  return new Model({
    inputs: input,
    outputs: new layers.Dense(2, { activation: "softmax" }).apply(new layers.Concatenate().apply([h!, c!])),
    seed: 2,
  });
}

const BUILT: (Case & { make: () => Model })[] = [
  { name: "separable convolutions", make: separableModel, label: (r) => r[5]! > 0.5 ? 1 : 0 },
  { name: "LSTM states", make: statesModel, vocab: 30, label: (r) => r[2]! < 15 ? 1 : 0 },
];

for (const c of BUILT) {
  Deno.test(`${c.name}: 2 worker processes end with the in-process weights`, async () => {
    const compiled = () => {
      const model = c.make();
      model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy" });
      return model;
    };
    const local = compiled();
    const { x, y } = dataFor(c, local);
    await local.fit(x, y, FIT);
    const model = compiled();
    await model.fit(x, y, { ...FIT, distribute: { workers: 2 } });
    assert.equal(model.lastFit!.workers, 2);
    const diff = maxAbsDiff(model.network.params, local.network.params);
    assert.ok(diff <= 1e-5, `max abs weight difference ${diff} > 1e-5`);
  });
}
