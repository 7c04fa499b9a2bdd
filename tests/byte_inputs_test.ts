/**
 * Inputs held as bytes (`Uint8Array`, e.g. pixels) and scaled in the model by `Rescaling`: the same
 * training as float inputs scaled beforehand, in-process and on worker processes, and the same file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { layers, models, optimizers, Sequential } from "../mod.ts";

const ROWS = 96, FEATURES = 12;

/** Bytes with a learnable label: class = whether the first feature is above 127. */
function byteData(): { x: Uint8Array; y: Float32Array } {
  const x = new Uint8Array(ROWS * FEATURES);
  let s = 7;
  for (let i = 0; i < x.length; i++) x[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const y = Float32Array.from({ length: ROWS }, (_, r) => (x[r * FEATURES]! > 127 ? 1 : 0));
  return { x, y };
}

/** Dense layers after `first`; scale 0.5 is exact in float32, so both pipelines see the same floats. */
function model(first: layers.Layer[]): Sequential {
  const m = new Sequential([
    ...first,
    new layers.Dense(8, { activation: "relu" }),
    new layers.Dropout(0.2),
    new layers.Dense(2, { activation: "softmax" }),
  ], { seed: 5 });
  m.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.01 }),
    loss: "sparse_categorical_crossentropy",
  });
  return m;
}

const FIT = { epochs: 2, batchSize: 16, verbose: 0 as const, validationSplit: 0.25, seed: 3 };

Deno.test("byte inputs scaled by Rescaling train exactly as float inputs scaled beforehand", async () => {
  const { x, y } = byteData();
  const bytes = model([new layers.Rescaling(0.5, { inputShape: [FEATURES] })]);
  const floats = model([new layers.InputLayer({ shape: [FEATURES] })]);
  const scaled = Float32Array.from(x, (v) => v * 0.5);
  const h1 = await bytes.fit({ data: x, shape: [ROWS, FEATURES] }, { data: y, shape: [ROWS] }, FIT);
  const h2 = await floats.fit({ data: scaled, shape: [ROWS, FEATURES] }, { data: y, shape: [ROWS] }, FIT);
  assert.deepEqual(h1.history, h2.history);
  assert.deepEqual(bytes.getWeights(), floats.getWeights());
  const [p1, p2] = [
    await bytes.predict({ data: x, shape: [ROWS, FEATURES] }, { verbose: 0 }),
    await floats.predict({ data: scaled, shape: [ROWS, FEATURES] }, { verbose: 0 }),
  ];
  assert.deepEqual(await p1.data(), await p2.data());
});

Deno.test("byte inputs train on two worker processes to the in-process weights", async () => {
  const { x, y } = byteData();
  const local = model([new layers.Rescaling(0.5, { inputShape: [FEATURES] })]);
  const remote = model([new layers.Rescaling(0.5, { inputShape: [FEATURES] })]);
  await local.fit({ data: x, shape: [ROWS, FEATURES] }, { data: y, shape: [ROWS] }, FIT);
  await remote.fit({ data: x, shape: [ROWS, FEATURES] }, { data: y, shape: [ROWS] }, {
    ...FIT,
    distribute: { workers: 2 },
  });
  const [a, b] = [local.getWeights(), remote.getWeights()];
  a.forEach((w, i) => w.forEach((v, k) => assert.ok(Math.abs(v - b[i]![k]!) <= 1e-5, `weight ${i}[${k}]`)));
});

Deno.test("Rescaling keeps its scale and offset through a .keras file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = model([new layers.Rescaling(1 / 255, { inputShape: [FEATURES], offset: -0.5 })]);
    const path = join(dir, "rescaled.keras");
    await m.save(path);
    const back = await models.loadModel(path);
    const layer = back.layers[0] as layers.Rescaling;
    assert.equal(layer.className, "Rescaling");
    assert.equal(layer.scale, 1 / 255);
    assert.equal(layer.offset, -0.5);
    const input = { data: byteData().x, shape: [ROWS, FEATURES] };
    assert.deepEqual(
      await (await back.predict(input, { verbose: 0 })).data(),
      await (await m.predict(input, { verbose: 0 })).data(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(
    () => new layers.Rescaling(Number.NaN),
    /scale must be a finite number \(e\.g\. 1 \/ 255\): received scale=NaN/,
  );
});
