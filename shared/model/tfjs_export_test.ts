import assert from "node:assert/strict";
import * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import { Input, layers, regularizers, tf } from "../../mod.ts";
import type { CallContext } from "./layers/mod.ts";
import { Network } from "./network.ts";
import { Rng } from "./random.ts";
import { exportTfjsLayers } from "./tfjs_export.ts";
import { maxAbsDiff } from "../../tests/support/compare.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

/** Random weights everywhere (variances positive), so every weight's placement shows in the outputs. */
function randomize(network: Network, seed: number): void {
  const rng = new Rng(seed, 1);
  for (let i = 0; i < network.params.length; i++) network.params[i] = rng.uniform() - 0.5;
  for (let i = 0; i < network.state.length; i++) network.state[i] = rng.uniform() + 0.5;
}

function randomInput(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed, 2);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => rng.uniform() * 2 - 1), shape);
}

/** Shoal's own inference (dropout off). */
function shoalPredict(network: Network, inputs: tf.Tensor[]): Float32Array {
  return tf.tidy(() => {
    const params = network.paramLayout.map((e) =>
      tf.tensor(network.params.subarray(e.offset, e.offset + e.size), e.shape)
    );
    const state = network.stateLayout.map((e) =>
      tf.tensor(network.state.subarray(e.offset, e.offset + e.size), e.shape)
    );
    return network.forward(params, state, inputs, context())[0]!.dataSync() as Float32Array;
  });
}

/** Loads an exported folder with tfjs-layers itself, reading model.json and the shards from disk. */
async function loadWithTfjs(dir: string): Promise<tfjs.LayersModel> {
  const modelJson = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
  return await tfjs.loadLayersModel({
    load: () =>
      tfjs.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const buffers = await Promise.all(
          manifest.flatMap((g) => g.paths).map(async (p) =>
            (await Deno.readFile(`${dir}/${p}`)).slice().buffer
          ),
        );
        return [specs, buffers];
      }),
  });
}

Deno.test("a Sequential model with Conv2D, pooling, BatchNorm and Dropout loads in tfjs and predicts as Shoal", async () => {
  const input = new Input({ shape: [6, 6, 2] });
  let x = new layers.Conv2D(3, 3, { activation: "relu", padding: "same" }).apply(input);
  x = new layers.MaxPooling2D({ poolSize: 2 }).apply(x);
  x = new layers.Flatten().apply(x);
  x = new layers.Dense(8, { activation: "relu", kernelRegularizer: regularizers.l2(0.01) }).apply(x);
  x = new layers.BatchNormalization().apply(x);
  x = new layers.Dropout(0.3).apply(x);
  x = new layers.Dense(4).apply(x);
  x = new layers.Activation("softmax").apply(x);
  const network = new Network({ inputs: [input], outputs: [x], kind: "Sequential", seed: 3 });
  randomize(network, 7);
  const dir = await Deno.makeTempDir();
  try {
    // A small shard size splits the weights into several shards, cutting through tensors.
    const written = await exportTfjsLayers(network, dir, { shardSizeBytes: 256 });
    const totalBytes = network.countParams() * 4;
    assert.equal(written.shards.length, Math.ceil(totalBytes / 256));
    const json = JSON.parse(await Deno.readTextFile(written.modelJson));
    assert.equal(json.format, "layers-model");
    assert.equal(json.modelTopology.class_name, "Sequential");
    assert.deepEqual(json.modelTopology.config.layers[0].config.batch_input_shape, [null, 6, 6, 2]);
    assert.deepEqual(json.weightsManifest[0].paths, written.shards.map((p) => p.slice(dir.length + 1)));
    assert.deepEqual(
      json.weightsManifest[0].weights.map((w: { name: string }) => w.name),
      network.weightEntries().map((e) => e.path),
    );
    const loaded = await loadWithTfjs(dir);
    const xs = randomInput([5, 6, 6, 2], 11);
    const expected = shoalPredict(network, [xs]);
    const actual = (loaded.predict(xs) as tfjs.Tensor).dataSync();
    assert.ok(maxAbsDiff(actual, expected) <= 1e-5, `max diff ${maxAbsDiff(actual, expected)}`);
    loaded.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a two-input Functional model loads in tfjs (one 4 MiB shard by default) and predicts as Shoal", async () => {
  const a = new Input({ shape: [5], name: "numeric" });
  const b = new Input({ shape: [7], name: "text" });
  const left = new layers.Dense(6, { activation: "relu" }).apply(
    new layers.Dense(6, { activation: "tanh" }).apply(a),
  );
  const right = new layers.Dense(4, { activation: "relu" }).apply(b);
  const merged = new layers.Concatenate().apply([left, right]);
  const out = new layers.Dense(1, { activation: "sigmoid" }).apply(
    new layers.Dense(5, { activation: "elu" }).apply(merged),
  );
  const network = new Network({ inputs: [a, b], outputs: [out], kind: "Functional", seed: 5 });
  randomize(network, 9);
  const dir = await Deno.makeTempDir();
  try {
    const written = await exportTfjsLayers({ network }, `${dir}/nested/export`);
    assert.equal(written.shards.length, 1);
    assert.ok(written.shards[0]!.endsWith("group1-shard1of1.bin"));
    const loaded = await loadWithTfjs(`${dir}/nested/export`);
    assert.deepEqual(loaded.inputNames, ["numeric", "text"]);
    const xa = randomInput([6, 5], 1), xb = randomInput([6, 7], 2);
    const expected = shoalPredict(network, [xa, xb]);
    const actual = (loaded.predict([xa, xb]) as tfjs.Tensor).dataSync();
    assert.ok(maxAbsDiff(actual, expected) <= 1e-5, `max diff ${maxAbsDiff(actual, expected)}`);
    loaded.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportTfjsLayers rejects a shard size that is not a positive multiple of 4", async () => {
  const input = new Input({ shape: [2] });
  const network = new Network({ inputs: [input], outputs: [new layers.Dense(1).apply(input)], seed: 1 });
  await assert.rejects(() => exportTfjsLayers(network, "/nonexistent", { shardSizeBytes: 10 }), {
    name: "RangeError",
    message: /shardSizeBytes must be a positive multiple of 4: received 10/,
  });
});
