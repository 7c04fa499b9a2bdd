import assert from "node:assert/strict";
import { layers, optimizers, Sequential, tf } from "../mod.ts";

const X = [[0.5, -1, 2], [1, 0, -0.5], [-1.5, 0.5, 0.5], [0.2, 0.3, -0.2], [1, 1, 1], [-0.3, 0.8, 0.1]];
const Y = [0, 1, 2, 1, 0, 2];
const SW = [1, 2, 0.5, 0, 3, 1];
const K = [[0.1, -0.2, 0.3], [0.4, 0.1, -0.1], [-0.3, 0.2, 0.2]];
const B = [0, 0.1, -0.1];

/** Dense(3, softmax) from fixed weights, SGD(0.5), as the Keras 3.15 run that gave the values below. */
function model(): Sequential {
  const m = new Sequential([new layers.Dense(3, { activation: "softmax", inputShape: [3] })], { seed: 1 });
  m.setWeights([Float32Array.from(K.flat()), Float32Array.from(B)]);
  m.compile({
    optimizer: new optimizers.SGD({ learningRate: 0.5 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  return m;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Values from Keras 3.15 (`evaluate(..., sample_weight=SW)`, `fit(..., sample_weight=SW)`, `class_weight`). */
Deno.test("evaluate and fit with sampleWeight give Keras's loss, Σ w·loss / batch size, and its step", async () => {
  const m = model();
  const x = tf.tensor2d(X), y = tf.tensor1d(Y);
  const [plain] = await m.evaluate(x, y, { batchSize: 6, verbose: 0 });
  close([plain!], [1.4897946119308472]);
  const [weighted, accuracy] = await m.evaluate(x, y, { batchSize: 6, verbose: 0, sampleWeight: SW });
  close([weighted!], [1.7714616060256958]);
  assert.equal(accuracy, 0, "compiled metrics stay unweighted");
  const history = await m.fit(x, y, {
    batchSize: 6,
    epochs: 1,
    shuffle: false,
    verbose: 0,
    sampleWeight: tf.tensor1d(SW),
  });
  close(history.history.loss!, [1.7714616060256958]);
  close(m.network.params.subarray(0, 9), [
    0.2668437957763672,
    -0.12958981096744537,
    0.06274603307247162,
    0.4639979600906372,
    0.01514272391796112,
    -0.07914064079523087,
    0.04192072153091431,
    -0.021746769547462463,
    0.07982605695724487,
  ]);
});

Deno.test("classWeight weighs each sample by its label's class, unlisted classes by 1, as Keras", async () => {
  const m = model();
  const history = await m.fit(tf.tensor2d(X), tf.tensor1d(Y), {
    batchSize: 4,
    epochs: 1,
    shuffle: false,
    verbose: 0,
    classWeight: { 0: 2, 2: 0.25 },
  });
  close(history.history.loss!, [1.5307039022445679]);
  close(history.history.accuracy!, [0.1666666716337204]);
  close(m.network.params, [
    0.43809929490089417,
    -0.2596173882484436,
    0.02151806652545929,
    0.4077877402305603,
    0.03918971121311188,
    -0.046977415680885315,
    0.43914511799812317,
    -0.22247101366519928,
    -0.11667410284280777,
    0.3594125509262085,
    -0.01736631989479065,
    -0.34204620122909546,
  ]);
});

Deno.test("weights that do not fit are refused with the value and the fix", async () => {
  const m = model();
  const x = tf.tensor2d(X), y = tf.tensor1d(Y);
  await assert.rejects(
    () => m.fit(x, y, { verbose: 0, sampleWeight: [1, 2] }),
    /sampleWeight of shape \[2\] as it needs one weight per sample: pass shape \[6\] \(or \[6, 1\]\)/,
  );
  await assert.rejects(
    () => m.fit(x, y, { verbose: 0, sampleWeight: SW, classWeight: { 0: 2 } }),
    /both sampleWeight and classWeight/,
  );
});

Deno.test("sampleWeight and classWeight over 2 workers end with the in-process weights and History", async () => {
  const rows = 64;
  const x = tf.tensor2d(Array.from({ length: rows * 3 }, (_, i) => Math.sin(i * 0.37)), [rows, 3]);
  const y = tf.tensor1d(Array.from({ length: rows }, (_, i) => i % 3));
  const sampleWeight = Array.from({ length: rows }, (_, i) => (i % 5) / 2);
  const fit = { batchSize: 16, epochs: 2, verbose: 0 as const, validationSplit: 0.25 };
  for (const weights of [{ sampleWeight }, { classWeight: { 0: 3, 1: 0.5 } }]) {
    const local = model();
    const localHistory = (await local.fit(x, y, { ...fit, ...weights })).history;
    const remote = model();
    const remoteHistory =
      (await remote.fit(x, y, { ...fit, ...weights, distribute: { workers: 2 } })).history;
    let diff = 0;
    local.network.params.forEach((v, i) => diff = Math.max(diff, Math.abs(v - remote.network.params[i]!)));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    for (const key of ["loss", "accuracy", "val_loss", "val_accuracy"]) {
      close(remoteHistory[key]!, localHistory[key]!, 1e-5);
    }
  }
});
