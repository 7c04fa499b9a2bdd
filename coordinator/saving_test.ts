import assert from "node:assert/strict";
import { Input, losses, metrics, Model, optimizers, Sequential, tf } from "../mod.ts";
import { KerasFileError, readKerasArchive, readWeightsH5 } from "../shared/io/keras/mod.ts";
import { layers, metricToConfig, ModelMismatchError, Rng } from "../shared/model/mod.ts";
import { loadWeights, saveModel, saveWeights } from "./saving.ts";
import { loadModel } from "./model.ts";
import { maxAbsDiff } from "../tests/support/compare.ts";

const FIXTURES = new URL("../tests/fixtures/keras/", import.meta.url).pathname;

interface Expected {
  inputs: number[][] | number[][][] | number[][][][];
  expected: number[][];
  optimizer_iterations: number;
}

async function expectedOf(name: string): Promise<Expected> {
  return JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}.expected.json`));
}

function random(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed, 3);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );
}

async function predictData(model: Model, x: tf.Tensor | tf.Tensor[]): Promise<Float32Array> {
  const out = await model.predict(x);
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-saving-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A Sequential model with BatchNorm and Dropout, trained a little so its BN stats and Adam slots are non-trivial. */
async function trainedSequential(seed: number): Promise<{ model: Sequential; x: tf.Tensor; y: tf.Tensor }> {
  const model = new Sequential([
    new layers.Dense(16, { activation: "relu", inputShape: [6] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.25),
    new layers.Dense(3, { activation: "softmax" }),
  ], { seed });
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.01 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  const x = random([48, 6], 1);
  const y = tf.tensor(Array.from({ length: 48 }, (_, i) => i % 3));
  await model.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0 });
  return { model, x, y };
}

/** Two inputs whose Keras layer order (by depth) differs from Shoal's execution order. */
function twoInputModel(seed: number, optimizer: optimizers.Optimizer): Model {
  const a = new Input({ shape: [5], name: "numeric" });
  const b = new Input({ shape: [7], name: "text" });
  const left = new layers.Dense(8, { activation: "relu" }).apply(
    new layers.Dense(8, { activation: "relu" }).apply(a),
  );
  const right = new layers.Dense(4, { activation: "relu" }).apply(
    new layers.Dense(6, { activation: "tanh" }).apply(b),
  );
  const merged = new layers.Dropout(0.2).apply(new layers.Concatenate().apply([left, right]));
  const model = new Model({ inputs: [a, b], outputs: new layers.Dense(1).apply(merged), seed });
  model.compile({ optimizer, loss: "mse", metrics: ["mae"] });
  return model;
}

for (const name of ["fashion_mlp", "multi_input", "regularized_binary"]) {
  Deno.test(`the Keras 3 fixture ${name}.keras loads, predicts as Keras within 1e-5 and restores the optimizer`, async () => {
    const model = await loadModel(`${FIXTURES}${name}.keras`);
    const e = await expectedOf(name);
    const x = name === "multi_input"
      ? (e.inputs as number[][][]).map((i) => tf.tensor(i))
      : tf.tensor(e.inputs as number[][]);
    const diff = maxAbsDiff(await predictData(model, x), e.expected.flat(3));
    assert.ok(diff <= 1e-5, `max diff ${diff}`);
    assert.equal(model.optimizer.iterations, e.optimizer_iterations);
  });
}

Deno.test("optimizer slots of a Keras file land on the weights they belong to (Keras layer order)", async () => {
  const model = await loadModel(`${FIXTURES}multi_input.keras`);
  const file = await readWeightsH5(`${FIXTURES}multi_input.weights.h5`);
  // Keras's trainable order is dense_4, dense_6, dense_5, …: vars 6 and 7 are m and v of dense_6/kernel.
  const entry = model.network.paramLayout.find((e) => e.path === "dense_6/kernel")!;
  const [m, v] = model.optimizer.slots;
  assert.deepEqual(file.optimizer!.vars[6]!.shape, [50, 32]);
  assert.deepEqual(m!.slice(entry.offset, entry.offset + entry.size), file.optimizer!.vars[6]!.data);
  assert.deepEqual(v!.slice(entry.offset, entry.offset + entry.size), file.optimizer!.vars[7]!.data);
  assert.equal(model.compiledLoss, "mean_squared_error");
  assert.deepEqual(model.compiledMetrics.map((x) => x.name), ["mae"]);
});

Deno.test("a loaded Keras model keeps training: the loss decreases and iterations go on from the file", async () => {
  const model = await loadModel(`${FIXTURES}regularized_binary.keras`, { seed: 4 });
  assert.ok(model.optimizer instanceof optimizers.SGD);
  const x = random([64, 4, 5], 2);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.sum(x, [1, 2]), 0), "float32"));
  const [before] = await model.evaluate(x, y, { verbose: 0 });
  await model.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0 });
  const [after] = await model.evaluate(x, y, { verbose: 0 });
  assert.equal(model.optimizer.iterations, 4 + 3 * 4);
  assert.ok(after! < before!, `loss ${before} -> ${after}`);
});

Deno.test("Sequential with BatchNorm and Dropout: save then load gives identical predictions, optimizer and training", async () => {
  await withTempDir(async (dir) => {
    const { model, x, y } = await trainedSequential(21);
    await saveModel(model, `${dir}/m.keras`);
    const loaded = await loadModel(`${dir}/m.keras`, { seed: model.seed });
    assert.ok(loaded instanceof Sequential);
    assert.deepEqual(await predictData(loaded, x), await predictData(model, x));
    assert.deepEqual(loaded.network.state, model.network.state);
    assert.equal(loaded.optimizer.iterations, 6);
    assert.equal(loaded.optimizer.learningRate, 0.01);
    assert.deepEqual(loaded.optimizer.slots, model.optimizer.slots);
    assert.deepEqual(loaded.compiledMetrics, model.compiledMetrics);
    const config = (await readKerasArchive(`${dir}/m.keras`)).config as {
      compile_config: Record<string, unknown>;
    };
    assert.deepEqual(config.compile_config.metrics, ["accuracy"]);
    assert.equal((config.compile_config.optimizer as { class_name: string }).class_name, "Adam");
    // Training continues exactly as it would have without the save.
    await model.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0, initialEpoch: 0 });
    await loaded.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0, initialEpoch: 0 });
    assert.deepEqual(loaded.network.params, model.network.params);
    assert.deepEqual(loaded.optimizer.slots, model.optimizer.slots);
  });
});

Deno.test("Functional two-input model with RMSprop and a schedule: save then load is identical", async () => {
  await withTempDir(async (dir) => {
    const schedule = new optimizers.ExponentialDecay({
      initialLearningRate: 0.01,
      decaySteps: 2,
      decayRate: 0.5,
    });
    const model = twoInputModel(
      8,
      new optimizers.RMSprop({ learningRate: schedule, momentum: 0.5, centered: true }),
    );
    const x = [random([20, 5], 4), random([20, 7], 5)];
    const y = random([20, 1], 6);
    await model.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0 });
    await saveModel(model, `${dir}/f.keras`);
    const archive = await readKerasArchive(`${dir}/f.keras`);
    // Keras stores no learning_rate variable for a schedule: iterations, then 3 slots per trainable weight.
    assert.equal(archive.weights.optimizer!.vars.length, 1 + 3 * model.network.paramLayout.length);
    const loaded = await loadModel(`${dir}/f.keras`);
    assert.equal(loaded.network.kind, "Functional");
    assert.deepEqual(await predictData(loaded, x), await predictData(model, x));
    assert.equal(loaded.optimizer.iterations, 2);
    assert.equal(loaded.optimizer.learningRate, model.optimizer.learningRate);
    assert.deepEqual(loaded.optimizer.slots, model.optimizer.slots);
  });
});

Deno.test("AdamW (amsgrad, clipnorm, CosineDecay) with a Huber loss: save then load is identical and trains on", async () => {
  await withTempDir(async (dir) => {
    const model = twoInputModel(9, new optimizers.Adam());
    model.compile({
      optimizer: new optimizers.AdamW({
        learningRate: new optimizers.schedules.CosineDecay({
          initialLearningRate: 0.01,
          decaySteps: 10,
          warmupTarget: 0.02,
          warmupSteps: 2,
        }),
        amsgrad: true,
        clipnorm: 0.5,
      }),
      loss: new losses.Huber({ delta: 0.5 }),
      metrics: ["mae", new metrics.AUC({ numThresholds: 50, name: "auc50" })],
    });
    const x = [random([20, 5], 4), random([20, 7], 5)];
    const y = random([20, 1], 6);
    await model.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0 });
    await saveModel(model, `${dir}/w.keras`);
    const archive = await readKerasArchive(`${dir}/w.keras`);
    const compile = (archive.config as { compile_config: Record<string, unknown> }).compile_config;
    assert.deepEqual((compile.loss as { config: unknown }).config, {
      name: "huber_loss",
      reduction: "sum_over_batch_size",
      delta: 0.5,
    });
    const optimizer = compile.optimizer as { class_name: string; config: Record<string, unknown> };
    assert.equal(optimizer.class_name, "AdamW");
    assert.deepEqual(
      [optimizer.config.weight_decay, optimizer.config.clipnorm, optimizer.config.amsgrad],
      [0.004, 0.5, true],
    );
    // iterations, then m/v per variable, then the AMSGrad maxima: 1 + 3 per trainable weight.
    assert.equal(archive.weights.optimizer!.vars.length, 1 + 3 * model.network.paramLayout.length);
    const loaded = await loadModel(`${dir}/w.keras`, { seed: 9 });
    assert.deepEqual(loaded.compiledLossSpec, { name: "huber", delta: 0.5 });
    assert.deepEqual(loaded.compiledMetrics, model.compiledMetrics);
    assert.deepEqual(compile.metrics, [
      "mae",
      metricToConfig(new metrics.AUC({ numThresholds: 50, name: "auc50" })),
    ]);
    assert.deepEqual(loaded.optimizer.toConfig(), model.optimizer.toConfig());
    assert.deepEqual(loaded.optimizer.slots, model.optimizer.slots);
    await model.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0, shuffle: false });
    await loaded.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0, shuffle: false });
    assert.deepEqual(loaded.network.params, model.network.params);
  });
});

Deno.test("a re-saved Keras Functional model keeps Keras's layer order and weight groups", async () => {
  await withTempDir(async (dir) => {
    const original = await readKerasArchive(`${FIXTURES}multi_input.keras`);
    await saveModel(await loadModel(`${FIXTURES}multi_input.keras`), `${dir}/again.keras`);
    const again = await readKerasArchive(`${dir}/again.keras`);
    const names = (a: typeof original) =>
      (a.config as { config: { layers: { name: string }[] } }).config.layers.map((l) => l.name);
    assert.deepEqual(names(again), names(original));
    for (const [group, vars] of original.weights.layers) {
      assert.equal(again.weights.layers.get(group)?.name, vars.name, group);
      assert.deepEqual(
        again.weights.layers.get(group)!.vars.map((v) => v.data),
        vars.vars.map((v) => v.data),
        group,
      );
    }
    assert.deepEqual(
      again.weights.optimizer!.vars.map((v) => v.data),
      original.weights.optimizer!.vars.map((v) => v.data),
    );
  });
});

Deno.test("saveWeights then loadWeights restores weights and optimizer state into a fresh model", async () => {
  await withTempDir(async (dir) => {
    const { model, x } = await trainedSequential(31);
    await saveWeights(model, `${dir}/w.weights.h5`);
    const file = await readWeightsH5(`${dir}/w.weights.h5`);
    assert.equal(file.optimizer!.vars.length, 2 + 2 * model.network.paramLayout.length);
    const other = (await trainedSequential(32)).model;
    assert.notDeepEqual(await predictData(other, x), await predictData(model, x));
    await loadWeights(other, `${dir}/w.weights.h5`);
    assert.deepEqual(await predictData(other, x), await predictData(model, x));
    assert.deepEqual(other.optimizer.slots, model.optimizer.slots);
    assert.equal(other.optimizer.iterations, model.optimizer.iterations);
    // A .keras archive also serves as a weights source, as in Keras.
    await saveModel(model, `${dir}/m.keras`);
    const third = (await trainedSequential(33)).model;
    await loadWeights(third, `${dir}/m.keras`);
    assert.deepEqual(third.getWeights(), model.getWeights());
  });
});

Deno.test("wrong file extensions are refused with the fix", async () => {
  const { model } = await trainedSequential(41);
  await assert.rejects(() => saveModel(model, "/tmp/x.h5"), {
    name: "RangeError",
    message: /x\.h5.*must end in \.keras.*\.weights\.h5/,
  });
  await assert.rejects(() => saveWeights(model, "/tmp/x.keras"), {
    name: "RangeError",
    message: /x\.keras.*must end in \.weights\.h5/,
  });
  await assert.rejects(() => loadModel("/tmp/x.weights.h5"), {
    name: "RangeError",
    message: /must end in \.keras.*loadWeights/,
  });
  await assert.rejects(() => loadWeights(model, "/tmp/x.npz"), { name: "RangeError", message: /x\.npz/ });
});

Deno.test("loading another model's weights fails with ModelMismatchError naming the weight and leaves the model unchanged", async () => {
  await withTempDir(async (dir) => {
    const { model } = await trainedSequential(51);
    await saveWeights(model, `${dir}/w.weights.h5`);
    const wider = new Sequential([
      new layers.Dense(16, { activation: "relu", inputShape: [6] }),
      new layers.BatchNormalization(),
      new layers.Dropout(0.25),
      new layers.Dense(4, { activation: "softmax" }),
    ], { seed: 52 });
    wider.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy" });
    const before = wider.getWeights();
    await assert.rejects(() => loadWeights(wider, `${dir}/w.weights.h5`), (error: unknown) => {
      assert.ok(error instanceof ModelMismatchError);
      assert.equal(error.weight, "dense_1/kernel");
      assert.match(error.message, /dense_1\/kernel.*expects \[16, 4\].*has \[16, 3\]/);
      return true;
    });
    assert.deepEqual(wider.getWeights(), before);
    assert.deepEqual(wider.optimizer.slots, []);
    const shallow = new Sequential([new layers.Dense(3, { inputShape: [6] })], { seed: 53 });
    await assert.rejects(() => loadWeights(shallow, `${dir}/w.weights.h5`), ModelMismatchError);
  });
});

Deno.test("a truncated archive gives a clear error; a save killed midway leaves the previous file loadable", async () => {
  await withTempDir(async (dir) => {
    const bytes = await Deno.readFile(`${FIXTURES}regularized_binary.keras`);
    await Deno.writeFile(`${dir}/cut.keras`, bytes.subarray(0, bytes.length - 4000));
    await assert.rejects(() => loadModel(`${dir}/cut.keras`), (error: unknown) => {
      assert.ok(error instanceof KerasFileError);
      assert.match(error.message, /cut\.keras.*truncated/);
      return true;
    });
    // A process that saves the 570k-parameter model over and over is killed during a save.
    const target = `${dir}/live.keras`;
    const saving = new URL("./saving.ts", import.meta.url).href;
    const model_ = new URL("./model.ts", import.meta.url).href;
    const code = `import { saveModel } from "${saving}"; import { loadModel } from "${model_}";
      const m = await loadModel(${JSON.stringify(`${FIXTURES}fashion_mlp.keras`)}, { compile: true });
      await saveModel(m, ${JSON.stringify(target)});
      console.log("saved");
      for (;;) await saveModel(m, ${JSON.stringify(target)});`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, code],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("saved")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    assert.match(out, /saved/);
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const model = await loadModel(target);
    const e = await expectedOf("fashion_mlp");
    assert.ok(
      maxAbsDiff(await predictData(model, tf.tensor(e.inputs as number[][])), e.expected.flat()) <= 1e-5,
    );
    assert.equal(model.optimizer.iterations, 32);
  });
});
