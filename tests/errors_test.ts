import assert from "node:assert/strict";
import { Input, layers, Model, models, Sequential, tf, utils } from "../mod.ts";
import { Network } from "../shared/model/network.ts";
import { explainConnectError, natsRoleOf } from "../shared/io/nats/mod.ts";
import { decodeKerasArchive, encodeKerasArchive } from "../shared/io/keras/mod.ts";

function mlp(): Sequential {
  const model = new Sequential([
    new layers.Dense(8, { activation: "relu", inputShape: [784] }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: 1 });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  return model;
}

const LABELS = tf.tensor1d([0, 1, 2, 3]);

/** Asserts that `fn` rejects with a message containing every fragment. */
async function rejectsWith(fn: () => Promise<unknown>, ...fragments: string[]): Promise<void> {
  await assert.rejects(fn, (e: Error) => {
    for (const f of fragments) assert.ok(e.message.includes(f), `"${f}" not in: ${e.message}`);
    return true;
  });
}

Deno.test("Images into a Dense model name the expected axis, the received shape, and the fix", async () => {
  const model = mlp();
  const images = tf.zeros([4, 28, 28]);
  const fragments = ["expected axis -1 of input shape to have value 784", "[null,28,28]", "Flatten"];
  await rejectsWith(() => model.fit(images, LABELS, { verbose: 0 }), ...fragments);
  await rejectsWith(() => model.evaluate(images, LABELS, { verbose: 0 }), ...fragments);
  await rejectsWith(() => model.predict(images), ...fragments);
});

Deno.test("categorical_crossentropy with integer labels points to the sparse loss and utils.toCategorical", async () => {
  const model = mlp();
  model.compile({ optimizer: "adam", loss: "categorical_crossentropy" });
  await rejectsWith(
    () => model.fit(tf.zeros([4, 784]), LABELS, { verbose: 0 }),
    "categorical_crossentropy expects one-hot labels of shape [n, 10]",
    "[4]",
    "sparse_categorical_crossentropy",
    "utils.toCategorical(y, 10)",
  );
  // One-hot labels for the sparse loss point the other way.
  await rejectsWith(
    () => mlp().fit(tf.zeros([4, 784]), utils.toCategorical(LABELS, 10), { verbose: 0 }),
    "sparse_categorical_crossentropy expects integer class labels",
    "categorical_crossentropy",
  );
});

Deno.test("Labels outside [0, classes) are rejected with the value, the sample and the range", async () => {
  const x = tf.zeros([4, 784]);
  await rejectsWith(
    () => mlp().fit(x, tf.tensor1d([0, 1, 10, 3]), { verbose: 0 }),
    "label value of 10 (sample 2)",
    "[0, 10)",
  );
  await rejectsWith(
    () => mlp().fit(x, tf.tensor1d([0, -1, 2, 3]), { verbose: 0 }),
    "label value of -1 (sample 1)",
  );
  await rejectsWith(
    () => mlp().evaluate(x, tf.tensor1d([0, 1, 2.5, 3]), { verbose: 0 }),
    "label value of 2.5",
  );
});

Deno.test("Unknown layer, activation, loss, optimizer and metric names list the valid ones", () => {
  assert.throws(
    () => new layers.Dense(4, { activation: "mish" }),
    /Unknown activation: 'mish'. Use one of: relu, sigmoid, softmax/,
  );
  const model = mlp();
  assert.throws(
    () => model.compile({ loss: "hinge" }),
    /Unknown loss: 'hinge'. Use one of: sparse_categorical_crossentropy/,
  );
  assert.throws(
    () => model.compile({ loss: "mse", optimizer: "adagrad" }),
    /Unknown optimizer: 'adagrad'. Use one of: adam, adamw, sgd, rmsprop/,
  );
  assert.throws(
    () => model.compile({ loss: "mse", metrics: ["f1_score"] }),
    /Unknown metric: 'f1_score'. Use one of: accuracy, acc/,
  );
  const config = {
    class_name: "Sequential",
    config: {
      name: "s",
      layers: [
        { class_name: "InputLayer", config: { batch_shape: [null, 4], name: "input_layer" } },
        { class_name: "ConvLSTM1D", config: { name: "conv_lstm1d", filters: 4 } },
      ],
    },
  };
  assert.throws(
    () => Network.fromConfig(config),
    /Cannot load layer "conv_lstm1d" \(class ConvLSTM1D\) as Shoal does not support a layer named ConvLSTM1D yet: the supported layers are Activation, Add, .*BatchNormalization, .*Dense, .*Dropout/,
  );
});

Deno.test("A Keras layer Shoal lacks, read from layers, is named with the supported ones", () => {
  const keras = layers as unknown as Record<string, new (...args: unknown[]) => unknown>;
  assert.throws(
    () => new keras.TextVectorization!({ maxTokens: 1000 }),
    (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(
        e.message,
        /Cannot use layers\.TextVectorization as Shoal does not support a layer named TextVectorization yet/,
      );
      assert.match(
        e.message,
        /the supported layers are Activation, Add, .*BatchNormalization, Bidirectional, Concatenate, Conv1D, Conv2D, Dense/,
      );
      return true;
    },
  );
  assert.throws(() => keras.ConvLSTM2D, /layers\.ConvLSTM2D/);
  assert.throws(() => keras.Dence, /Did you mean Dense\?/);
  // What layers does export still reads as before, and so do lower-case and symbol keys.
  assert.equal(typeof layers.Dense, "function");
  assert.ok(new layers.Dense(2) instanceof layers.Dense);
  assert.equal((layers as unknown as Record<string, unknown>).then, undefined);
  assert.ok(Object.keys(layers).includes("MaxPooling2D"));
});

Deno.test("Loading a .keras file with a layer Shoal lacks names the layer and its class", async () => {
  // Saved by Keras 3: Embedding(200, 8) -> LSTM(16) -> Dense(1, sigmoid), with the LSTM's class renamed
  // to one Shoal lacks (and its weights group with it).
  const path = new URL("./fixtures/keras/text_lstm.keras", import.meta.url).pathname;
  const archive = await decodeKerasArchive(await Deno.readFile(path), path);
  const config = JSON.parse(
    JSON.stringify(archive.config).replace('"class_name":"LSTM"', '"class_name":"ConvLSTM1D"'),
  );
  const layersByGroup = new Map(
    [...archive.weights.layers].map(([k, v]) => [k.replace("layers/lstm", "layers/conv_lstm1d"), v]),
  );
  const dir = await Deno.makeTempDir({ prefix: "shoal-unsupported-" });
  try {
    const bad = `${dir}/conv_lstm.keras`;
    await Deno.writeFile(
      bad,
      await encodeKerasArchive({ config, weights: { ...archive.weights, layers: layersByGroup } }),
    );
    await rejectsWith(
      () => models.loadModel(bad),
      'Cannot load layer "lstm" (class ConvLSTM1D)',
      "does not support a layer named ConvLSTM1D yet",
      "the supported layers are Activation, Add",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("epochs 0, batchSize 0, validationSplit 1.5 and a bad initialEpoch are rejected with the value", async () => {
  const x = tf.zeros([4, 784]);
  await rejectsWith(
    () => mlp().fit(x, LABELS, { epochs: 0, verbose: 0 }),
    "epochs must be a positive integer",
    "epochs=0",
  );
  await rejectsWith(
    () => mlp().fit(x, LABELS, { batchSize: 0, verbose: 0 }),
    "batchSize must be a positive integer",
    "batchSize=0",
  );
  await rejectsWith(
    () => mlp().fit(x, LABELS, { validationSplit: 1.5, verbose: 0 }),
    "validationSplit must be in [0, 1)",
    "1.5",
  );
  await rejectsWith(
    () => mlp().fit(x, LABELS, { epochs: 2, initialEpoch: 2, verbose: 0 }),
    "initialEpoch must be in [0, epochs)",
  );
  // floor(4 · (1 - 0.8)) = 0 training samples.
  await rejectsWith(
    () => mlp().fit(x, LABELS, { validationSplit: 0.8, verbose: 0 }),
    "Cannot split 4 samples with validationSplit=0.8",
  );
});

Deno.test("x and y with different sample counts are rejected with both counts", async () => {
  await rejectsWith(
    () => mlp().fit(tf.zeros([5, 784]), LABELS, { verbose: 0 }),
    "x has 5 samples but y has 4",
  );
});

Deno.test("fit before compile and an unbuilt model say what to do", async () => {
  const model = new Sequential([new layers.Dense(2, { inputShape: [3] })]);
  await rejectsWith(() => model.fit(tf.zeros([2, 3]), tf.zeros([2]), { verbose: 0 }), "compile");
  assert.throws(() => new Sequential([new layers.Dense(2)]).countParams(), /has not yet been built/);
});

Deno.test("Inputs in 0..255 warn once that they should be normalized", async () => {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(" "));
  try {
    const model = mlp();
    const pixels = tf.fill([4, 784], 255);
    await model.fit(pixels, LABELS, { epochs: 1, verbose: 0 });
    await model.fit(pixels, LABELS, { epochs: 1, verbose: 0 });
    await model.evaluate(pixels, LABELS, { verbose: 0 });
    // Scaled data does not warn.
    const quiet = mlp();
    await quiet.fit(tf.fill([4, 784], 0.5), LABELS, { epochs: 1, verbose: 0 });
  } finally {
    console.warn = original;
  }
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /values up to 255/);
  assert.match(warnings[0]!, /x\.div\(255\)/);
});

Deno.test("utils.toCategorical one-hot encodes labels and rejects labels out of range", () => {
  const y = utils.toCategorical([2, 0, 1], 4);
  assert.deepEqual(y.shape, [3, 4]);
  assert.deepEqual(y.arraySync(), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]]);
  assert.equal(y.dtype, "float32");
  // numClasses defaults to max + 1; tensors work too.
  assert.deepEqual(utils.to_categorical(tf.tensor1d([1, 0], "int32")).arraySync(), [[0, 1], [1, 0]]);
  assert.throws(
    () => utils.toCategorical([0, 5], 3),
    /Cannot one-hot encode label 5 \(sample 1\) with numClasses=3/,
  );
  assert.throws(() => utils.toCategorical([0, 1.5], 3), /label 1.5/);
});

Deno.test("An unreachable NATS server gets advice that fits who connects", () => {
  const refused = new Error("CONNECTION_REFUSED");
  const coordinator = explainConnectError(refused, "nats://10.0.0.5:4222", undefined, "coordinator") as Error;
  assert.match(
    coordinator.message,
    /Cannot connect to NATS server nats:\/\/10\.0\.0\.5:4222: CONNECTION_REFUSED/,
  );
  assert.match(coordinator.message, /omit it to start an embedded server/);
  const worker = explainConnectError(refused, "nats://10.0.0.5:4222", undefined, "worker") as Error;
  assert.match(worker.message, /Check the --nats URL .* coordinator or its nats-server is running/);
  assert.doesNotMatch(worker.message, /embedded/);
  // The connection names of worker/worker.ts and coordinator/nats_pool.ts carry the role.
  assert.equal(natsRoleOf("shoal-worker-w1"), "worker");
  assert.equal(natsRoleOf("shoal-worker-w1-sync"), "worker");
  assert.equal(natsRoleOf("shoal-coordinator-job1"), "coordinator");
  assert.equal(natsRoleOf(undefined), "coordinator");
});

Deno.test("Named inputs that the model lacks, or leaves out, are named with the model's input names", async () => {
  const numeric = new Input({ shape: [3], name: "numeric" });
  const extra = new Input({ shape: [4], name: "extra" });
  const out = new layers.Dense(1).apply(new layers.Concatenate().apply([numeric, extra]));
  const model = new Model({ inputs: [numeric, extra], outputs: out, name: "two" });
  model.compile({ optimizer: "adam", loss: "mse" });
  const xa = tf.zeros([4, 3]), xb = tf.zeros([4, 4]), y = tf.zeros([4]);
  await rejectsWith(
    () => model.fit({ numerc: xa, extra: xb }, y, { verbose: 0 }),
    `model "two" has no input named "numerc"`,
    `its inputs are "numeric", "extra"`,
    "Did you mean numeric?",
  );
  await rejectsWith(
    () => model.evaluate({ numeric: xa }, y, { verbose: 0 }),
    `Cannot evaluate as input "extra" of model "two" is missing`,
    `"numeric", "extra"`,
  );
  await rejectsWith(() => model.predict({ numeric: xa, extra: xb, more: xb }), `no input named "more"`);
  await rejectsWith(
    () => model.fit([xa, xb], y, { validationData: [{ numeric: xa }, y], verbose: 0 }),
    `input "extra" of model "two" is missing`,
  );
});

Deno.test("A 1-D input gets the model's [batch, ...inputShape] and the reshape that fits", async () => {
  const model = new Sequential([new layers.Dense(2, { inputShape: [3] })]);
  await rejectsWith(
    () => model.predict(tf.tensor1d([1, 2, 3])),
    "Cannot predict on x of shape [3] as the model expects [batch, 3]",
    "for one sample, pass x.reshape([1, 3])",
  );
  await rejectsWith(
    () => model.predict(tf.tensor1d([1, 2, 3, 4, 5, 6])),
    "for 2 samples, pass x.reshape([-1, 3])",
  );
  const oneFeature = new Sequential([new layers.Dense(1, { inputShape: [1] })]);
  oneFeature.compile({ optimizer: "sgd", loss: "mse" });
  await rejectsWith(
    () => oneFeature.fit(tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([2, 4, 6, 8]), { verbose: 0 }),
    "Cannot fit on x of shape [4] as the model expects [batch, 1]",
    "for 4 samples of one value each, pass x.reshape([-1, 1])",
  );
});

Deno.test("y of the wrong shape for the loss names y's shape and the model output's", async () => {
  const regression = new Sequential([new layers.Dense(10, { inputShape: [4] })]);
  regression.compile({ optimizer: "adam", loss: "mse" });
  const x = tf.zeros([200, 4]);
  await rejectsWith(
    () => regression.fit(x, tf.zeros([200, 3]), { verbose: 0 }),
    "Cannot fit with loss mean_squared_error as y must have the shape of the model's output [n, 10]",
    "received y of shape [200, 3]",
    "Pass y of shape [200, 10]",
    "new layers.Dense(3)",
  );
  await rejectsWith(
    () => regression.evaluate(x, tf.zeros([200]), { verbose: 0 }),
    "Cannot evaluate with loss mean_squared_error",
    "received y of shape [200]",
  );
  // One output unit takes y as [n] or [n, 1].
  const single = new Sequential([new layers.Dense(1, { activation: "sigmoid", inputShape: [4] })]);
  single.compile({ optimizer: "adam", loss: "binary_crossentropy" });
  await single.fit(x, tf.zeros([200]), { verbose: 0 });
  await single.fit(x, tf.zeros([200, 1]), { verbose: 0 });
  await rejectsWith(() => single.fit(x, tf.zeros([200, 2]), { verbose: 0 }), "binary_crossentropy", "[n, 1]");
  // Sparse labels are class ids: [n] or [n, 1], named against the output.
  await rejectsWith(
    () => mlp().fit(tf.zeros([4, 784]), tf.zeros([4, 3]), { verbose: 0 }),
    "integer class labels of shape [n]",
    "model output of shape [n, 10]",
  );
});

Deno.test("evaluate and predict reject a verbose or batchSize Keras would not take", async () => {
  const model = mlp();
  const x = tf.zeros([4, 784]);
  await rejectsWith(
    () => model.evaluate(x, LABELS, { verbose: 5 as 1 }),
    'Cannot evaluate as verbose must be "auto", 0 (silent), 1 (progress bar) or 2 (one line)',
    "verbose=5",
  );
  await rejectsWith(() => model.predict(x, { batchSize: 0 }), "batchSize must be a positive integer");
});

Deno.test("every error Shoal raises on purpose is exported from mod.ts for instanceof", async () => {
  const { errors } = await import("../mod.ts");
  const names = Object.keys(errors).sort();
  assert.deepEqual(names, [
    "DataPlaneAuthError",
    "DataPlaneUnreachableError",
    "DatasetError",
    "JobConfigError",
    "KerasFileError",
    "MessageFormatError",
    "ModelMismatchError",
    "NotEnoughWorkersError",
    "PayloadTooLargeError",
    "StoppedWaitingError",
    "TrainingInterruptedError",
  ]);
  for (const [name, ErrorClass] of Object.entries(errors)) {
    assert.ok(ErrorClass.prototype instanceof Error, `${name} is an Error`);
  }
});
