import assert from "node:assert/strict";
import {
  callbacks,
  datasets,
  Input,
  layers,
  Model,
  optimizers,
  regularizers,
  Sequential,
  tf,
} from "../mod.ts";
import { Engine } from "../shared/model/mod.ts";

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Records what the training loop reports to callbacks. */
class Recorder extends callbacks.Callback {
  epochs: number[] = [];
  batches = 0;
  steps = 0;
  override onTrainBegin(): void {
    this.steps = this.params.steps;
  }
  override onEpochBegin(epoch: number): void {
    this.epochs.push(epoch);
  }
  override onBatchEnd(): void {
    this.batches++;
  }
}

/** A small classifier with Dropout: 8 features, 3 classes. */
function classifier(seed: number): Sequential {
  const model = new Sequential([
    new layers.Dense(16, { activation: "relu", inputShape: [8] }),
    new layers.Dropout(0.25),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed });
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.01 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  return model;
}

const X = tf.randomNormal([48, 8], 0, 1, "float32", 21);
const Y = tf.tensor1d(Array.from({ length: 48 }, (_, i) => i % 3));

Deno.test("validationSplit takes the last fraction of the data before shuffling", async () => {
  // A model that always predicts class 0 and never changes (SGD with learning rate 0).
  const model = new Sequential([new layers.Dense(2, { activation: "softmax", inputShape: [1] })], {
    seed: 1,
  });
  model.setWeights([Float32Array.from([0, 0]), Float32Array.from([5, 0])]);
  model.compile({
    optimizer: new optimizers.SGD({ learningRate: 0 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  const x = tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 1]);
  // The first 6 are all class 0; the last 4 (the validation part of a 0.4 split) are 1, 1, 1, 0.
  const y = tf.tensor1d([0, 0, 0, 0, 0, 0, 1, 1, 1, 0]);
  const recorder = new Recorder();
  const h = await model.fit(x, y, {
    epochs: 1,
    batchSize: 2,
    validationSplit: 0.4,
    verbose: 0,
    callbacks: [recorder],
  });
  const easy = Math.log1p(Math.exp(-5)); // -log softmax([5, 0])[0]
  const hard = 5 + easy; // -log softmax([5, 0])[1]
  assert.deepEqual(h.history.accuracy, [1]);
  assertClose(h.history.loss!, [easy], 1e-5);
  assert.deepEqual(h.history.val_accuracy, [0.25]);
  assertClose(h.history.val_loss!, [(3 * hard + easy) / 4], 1e-5);
  // 6 training samples in batches of 2.
  assert.deepEqual([recorder.steps, recorder.batches], [3, 3]);
});

Deno.test("History has Keras's keys for a classifier, and epochs count from initialEpoch", async () => {
  const model = classifier(3);
  const recorder = new Recorder();
  const h = await model.fit(X, Y, {
    epochs: 3,
    initialEpoch: 1,
    batchSize: 16,
    validationSplit: 0.25,
    verbose: 0,
    callbacks: [recorder],
  });
  assert.deepEqual(Object.keys(h.history), ["accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"]);
  assert.deepEqual(h.epoch, [1, 2]);
  assert.deepEqual(recorder.epochs, [1, 2]);
  assert.equal(recorder.batches, 2 * Math.ceil(36 / 16));
  assert.deepEqual(h.history.learning_rate, [0.01, 0.01]);
  assert.equal(model.optimizer.iterations, 6);
  for (const v of Object.values(h.history)) assert.ok(v.every(Number.isFinite));
});

Deno.test("The same seed trains to identical weights; shuffle false does not depend on the seed", async () => {
  const run = async (modelSeed: number, opts: { shuffle: boolean; seed?: number }) => {
    const model = classifier(modelSeed);
    await model.fit(X, Y, { epochs: 2, batchSize: 8, verbose: 0, ...opts });
    return model.network.params.slice();
  };
  const a = await run(4, { shuffle: true });
  assert.deepEqual(await run(4, { shuffle: true }), a);
  assert.notDeepEqual(await run(4, { shuffle: true, seed: 99 }), a);
  // Without shuffling, only dropout depends on the seed: a Dropout-free model ignores it.
  const plain = async (seed: number) => {
    const model = new Sequential([new layers.Dense(3, { activation: "softmax", inputShape: [8] })], {
      seed: 4,
    });
    model.compile({ optimizer: "sgd", loss: "sparse_categorical_crossentropy" });
    await model.fit(X, Y, { epochs: 2, batchSize: 8, shuffle: false, seed, verbose: 0 });
    return model.network.params.slice();
  };
  assert.deepEqual(await plain(1), await plain(2));
});

Deno.test("evaluate returns [loss, accuracy] with dropout off, the same every time", async () => {
  const model = classifier(5);
  await model.fit(X, Y, { epochs: 2, batchSize: 16, verbose: 0 });
  const first = await model.evaluate(X, Y, { verbose: 0 });
  const second = await model.evaluate(X, Y, { batchSize: 7, verbose: 0 });
  assert.equal(first.length, 2);
  assertClose(second, first, 1e-6);
  // The same numbers from the predicted probabilities.
  const p = (await model.predict(X)).arraySync() as number[][];
  const labels = Array.from(Y.dataSync());
  const loss = p.reduce((s, row, i) => s - Math.log(row[labels[i]!]!), 0) / p.length;
  const acc = p.filter((row, i) => row.indexOf(Math.max(...row)) === labels[i]).length / p.length;
  assertClose(first, [loss, acc], 1e-5);
});

Deno.test("predict returns a tf.Tensor [n, classes] whose rows sum to 1", async () => {
  const model = new Sequential([
    new layers.Dense(12, { activation: "relu", inputShape: [8] }),
    new layers.Dropout(0.5),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: 6 });
  const p = await model.predict(X, { batchSize: 10 });
  assert.ok(p instanceof tf.Tensor);
  assert.deepEqual(p.shape, [48, 10]);
  assertClose(tf.sum(p, 1).dataSync(), new Array(48).fill(1), 1e-5);
  // Dropout is off in predict: the same output twice, whatever the batch size.
  assert.deepEqual((await model.predict(X, { batchSize: 10 })).dataSync(), p.dataSync());
  assertClose((await model.predict(X)).dataSync(), p.dataSync(), 1e-6);
});

Deno.test("BatchNorm moving statistics move by (1 - momentum) toward the batch statistics each step", async () => {
  const model = new Sequential([new layers.BatchNormalization({ inputShape: [2] }), new layers.Dense(1)], {
    seed: 1,
  });
  model.compile({ optimizer: new optimizers.SGD({ learningRate: 0 }), loss: "mse" });
  const x = tf.tensor2d([[1, 2], [3, 6], [5, 10], [7, 2]]);
  await model.fit(x, tf.zeros([4]), { epochs: 2, batchSize: 4, verbose: 0 });
  // Batch mean [4, 5] and biased variance [5, 11], twice: moving = 0.99·moving + 0.01·batch.
  const [, , mean, variance] = model.getWeights();
  const after = (start: number, batch: number) => (start * 0.99 + batch * 0.01) * 0.99 + batch * 0.01;
  assertClose(mean!, [after(0, 4), after(0, 5)], 1e-6);
  assertClose(variance!, [after(1, 5), after(1, 11)], 1e-6);
});

Deno.test("An L2 kernel regularizer adds its penalty to the training and evaluation loss", async () => {
  const build = (reg: boolean) => {
    const m = new Sequential([
      new layers.Dense(3, {
        activation: "softmax",
        inputShape: [8],
        ...(reg ? { kernelRegularizer: regularizers.l2(0.05) } : {}),
      }),
    ], { seed: 8 });
    m.compile({
      optimizer: new optimizers.SGD({ learningRate: 0 }),
      loss: "sparse_categorical_crossentropy",
    });
    return m;
  };
  const withReg = build(true), without = build(false);
  const kernel = withReg.getWeights()[0]!;
  const penalty = 0.05 * kernel.reduce((s, w) => s + w * w, 0);
  assert.ok(penalty > 0.01);
  const h1 = await withReg.fit(X, Y, { epochs: 1, batchSize: 16, verbose: 0 });
  const h0 = await without.fit(X, Y, { epochs: 1, batchSize: 16, verbose: 0 });
  assertClose([h1.history.loss![0]! - h0.history.loss![0]!], [penalty], 1e-5);
  const [e1] = await withReg.evaluate(X, Y, { verbose: 0 });
  const [e0] = await without.evaluate(X, Y, { verbose: 0 });
  assertClose([e1! - e0!], [penalty], 1e-5);
});

Deno.test("An L1 regularizer's gradient l1·sign(w) reaches the weights", async () => {
  // With zero data gradient (no hidden signal: mse of a zero target with zero input), only the penalty moves w.
  const model = new Sequential([
    new layers.Dense(2, { inputShape: [2], kernelRegularizer: regularizers.l1(0.5), useBias: false }),
  ], { seed: 2 });
  model.compile({ optimizer: new optimizers.SGD({ learningRate: 0.1 }), loss: "mse" });
  const before = model.getWeights()[0]!;
  await model.fit(tf.zeros([4, 2]), tf.zeros([4, 2]), { epochs: 1, batchSize: 4, verbose: 0 });
  assertClose(model.getWeights()[0]!, before.map((w) => w - 0.1 * 0.5 * Math.sign(w)), 1e-6);
});

Deno.test("A small MLP learns 512 Fashion-MNIST samples to over 70% training accuracy", async () => {
  const [[xTrain, yTrain]] = await datasets.fashionMnist.loadData();
  const x = tf.div(tf.reshape(tf.slice(xTrain, 0, 512), [512, 784]), 255);
  const y = tf.slice(yTrain, 0, 512);
  const model = new Sequential([
    new layers.Dense(64, { activation: "relu", inputShape: [784] }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: 1 });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  const h = await model.fit(x, y, { epochs: 5, batchSize: 32, verbose: 0 });
  const acc = h.history.accuracy!;
  assert.ok(acc.at(-1)! > 0.7, `accuracy per epoch ${acc}`);
  assert.ok(h.history.loss!.at(-1)! < h.history.loss![0]!);
});

Deno.test("A frozen layer keeps its weights through fit while the others train", async () => {
  const model = new Sequential([
    new layers.Dense(4, { activation: "relu", inputShape: [8], trainable: false }),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed: 9 });
  model.compile({
    optimizer: new optimizers.SGD({ learningRate: 0.1 }),
    loss: "sparse_categorical_crossentropy",
  });
  const before = model.getWeights();
  await model.fit(X, Y, { epochs: 1, batchSize: 16, verbose: 0 });
  const after = model.getWeights();
  assert.deepEqual(after[0], before[0]);
  assert.deepEqual(after[1], before[1]);
  assert.notDeepEqual(after[2], before[2]);
});

Deno.test("A per-step softmax output trains in the Engine, and its loss averages over all steps", () => {
  // fit/evaluate reject labels [n, steps] for the sparse loss before reaching the Engine (Model.checkData).
  const model = new Sequential([new layers.Dense(3, { activation: "softmax", inputShape: [2, 4] })], {
    seed: 2,
  });
  const engine = new Engine(model.network, {
    loss: "sparse_categorical_crossentropy",
    metrics: [{ name: "accuracy", fn: "sparse_categorical_accuracy" }],
    seed: 1,
  });
  const x = tf.randomNormal([6, 2, 4], 0, 1, "float32", 3);
  const ids = [[0, 1], [2, 0], [1, 1], [0, 2], [2, 2], [1, 0]];
  const batch = {
    inputs: [{ data: x.dataSync() as Float32Array, shape: [6, 2, 4] }],
    y: { data: Float32Array.from(ids.flat()), shape: [6, 2] },
  };
  const { params, state } = model.network;
  const slice = engine.trainSlice(params, state, batch, 0, 0);
  assert.ok(slice.grads.every(Number.isFinite) && slice.grads.some((g) => g !== 0));
  const r = engine.evaluate(params, state, batch);
  const p = new Float32Array(engine.predict(params, state, batch));
  let sum = 0, hits = 0;
  ids.forEach((steps, i) =>
    steps.forEach((id, t) => {
      const row = Array.from(p.subarray((i * 2 + t) * 3, (i * 2 + t + 1) * 3));
      sum -= Math.log(row[id]!);
      if (row.indexOf(Math.max(...row)) === id) hits++;
    })
  );
  assertClose([r.lossSum / r.count, r.metricSums[0]! / r.count], [sum / 12, hits / 12], 1e-5);
  assertClose([slice.lossSum], [r.lossSum], 1e-5);
});

/** Two named inputs, as in the chapter's Functional example: 3 numeric features and a 4-wide embedding. */
function twoInputModel(): Model {
  const numeric = new Input({ shape: [3], name: "numeric" });
  const extra = new Input({ shape: [4], name: "extra" });
  const merged = new layers.Concatenate().apply([
    new layers.Dense(6, { activation: "relu" }).apply(numeric),
    new layers.Dense(6, { activation: "relu" }).apply(extra),
  ]);
  const model = new Model({ inputs: [numeric, extra], outputs: new layers.Dense(1).apply(merged), seed: 3 });
  model.compile({ optimizer: "adam", loss: "mse", metrics: ["mae"] });
  return model;
}

Deno.test("fit, evaluate and predict take inputs keyed by Input name, in any order, as Keras does", async () => {
  const xa = tf.randomNormal([40, 3], 0, 1, "float32", 1);
  const xb = tf.randomNormal([40, 4], 0, 1, "float32", 2);
  const y = tf.randomNormal([40], 0, 1, "float32", 3);
  const byName = twoInputModel();
  const byList = twoInputModel();
  const named = { extra: xb, numeric: xa };
  const h1 = await byName.fit(named, y, { epochs: 2, batchSize: 8, validationData: [named, y], verbose: 0 });
  const h2 = await byList.fit([xa, xb], y, {
    epochs: 2,
    batchSize: 8,
    validationData: [[xa, xb], y],
    verbose: 0,
  });
  assert.deepEqual(h1.history, h2.history);
  assert.deepEqual(
    await byName.evaluate(named, y, { verbose: 0 }),
    await byList.evaluate([xa, xb], y, { verbose: 0 }),
  );
  const p1 = await byName.predict({ numeric: xa, extra: xb }, { verbose: 0 });
  assert.deepEqual(p1.dataSync(), (await byList.predict([xa, xb], { verbose: 0 })).dataSync());
});

/** Runs `code` (a module that imports Shoal as `SHOAL`) in its own process; returns its stdout. */
async function runScript(code: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-progbar-" });
  try {
    const script = `${dir}/script.ts`;
    await Deno.writeTextFile(script, code.replace("SHOAL", new URL("../mod.ts", import.meta.url).href));
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return new TextDecoder().decode(r.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("evaluate and predict print Keras's progress bar by default, one line at verbose 2, none at 0", async () => {
  const out = await runScript(`
    import { layers, Sequential, tf } from "SHOAL";
    const model = new Sequential([new layers.Dense(3, { activation: "softmax", inputShape: [4] })], { seed: 1 });
    model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
    const x = tf.randomNormal([40, 4], 0, 1, "float32", 1);
    const y = tf.tensor1d(Array.from({ length: 40 }, (_, i) => i % 3));
    console.log("[evaluate auto]");
    await model.evaluate(x, y);
    console.log("[evaluate 2]");
    await model.evaluate(x, y, { batchSize: 16, verbose: 2 });
    console.log("[evaluate 0]");
    await model.evaluate(x, y, { verbose: 0 });
    console.log("[predict auto]");
    await model.predict(x);
    console.log("[predict 0]");
    await model.predict(x, { verbose: 0 });
    console.log("[end]");
  `);
  // Not a terminal: only the final line of each bar (Keras's Progbar does the same).
  const bar = "━".repeat(20);
  const lines = out.trimEnd().split("\n");
  assert.equal(lines.length, 9, out);
  assert.equal(lines[0], "[evaluate auto]");
  assert.match(
    lines[1]!,
    new RegExp(`^2/2 ${bar} \\d+s \\d+(ms|us|s)/step - accuracy: \\d\\.\\d{4} - loss: \\d\\.\\d{4}$`),
  );
  assert.equal(lines[2], "[evaluate 2]");
  assert.match(lines[3]!, /^3\/3 - \d+s - \d+(ms|us|s)\/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}$/);
  assert.equal(lines[4], "[evaluate 0]");
  assert.equal(lines[5], "[predict auto]");
  assert.match(lines[6]!, new RegExp(`^2/2 ${bar} \\d+s \\d+(ms|us|s)/step$`));
  assert.equal(lines[7], "[predict 0]");
  assert.equal(lines[8], "[end]");
});
