/**
 * The chapter's common mistakes, each one made on purpose and its consequence shown: unnormalized
 * input, categorical_crossentropy with integer labels, EarlyStopping without restoreBestWeights, an
 * input shape that does not match the data, and (the non-mistake) Dropout being off in predict.
 */
import { callbacks, layers, Sequential, utils } from "../mod.ts";
import { loadMnist } from "./mnist.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs, sample } from "./options.ts";

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Makes each mistake and prints what happens, then the fix. */
export async function main(opts: ExampleOptions): Promise<void> {
  const [[xTrain, yTrain]] = await loadMnist();
  const images = sample(opts, xTrain).toFloat(); // [n, 28, 28], values 0–255
  const y = sample(opts, yTrain);
  const xRaw = images.reshape([-1, 784]); // No normalization!
  const x = xRaw.div(255);

  // The chapter's model, expecting flat 784-pixel rows.
  const build = () =>
    new Sequential([
      new layers.Dense(128, { activation: "relu", inputShape: [784] }),
      new layers.Dense(10, { activation: "softmax" }),
    ], { seed: opts.seed });
  const fitOptions = { epochs: epochs(opts, 10, 2), verbose: 0 as const, ...distribute(opts) };
  const lastAccuracy = (h: callbacks.History) => h.history.accuracy!.at(-1)!.toFixed(4);

  console.log("=== Mistake 1: Forgetting to normalize input data ===");
  let model = build();
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  let history = await model.fit(xRaw, y, fitOptions);
  console.log(`Unnormalized (0-255) inputs: final training accuracy ${lastAccuracy(history)}`);
  model = build();
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  history = await model.fit(x, y, fitOptions);
  console.log(`Normalized (0-1) inputs:     final training accuracy ${lastAccuracy(history)}`);

  console.log("\n=== Mistake 2: Using the wrong loss function for the labels ===");
  model = build();
  model.compile({ optimizer: "adam", loss: "categorical_crossentropy", metrics: ["accuracy"] }); // Wrong!
  try {
    await model.fit(x, y, fitOptions);
  } catch (e) {
    console.log(describe(e));
  }
  const yOnehot = utils.toCategorical(y, 10);
  history = await model.fit(x, yOnehot, fitOptions);
  console.log(`With one-hot labels (utils.toCategorical): final training accuracy ${lastAccuracy(history)}`);

  console.log("\n=== Mistake 3: Not using restoreBestWeights in EarlyStopping ===");
  // A small training set, so that the model overfits and validation loss turns upward.
  const [xSmall, ySmall] = [x.slice(0, 1000), y.slice(0, 1000)];
  const [xVal, yVal] = [x.slice(1000, 500), y.slice(1000, 500)];
  for (const restoreBestWeights of [false, true]) {
    model = new Sequential([
      new layers.Dense(512, { activation: "relu", inputShape: [784] }),
      new layers.Dense(10, { activation: "softmax" }),
    ], { seed: opts.seed });
    model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
    const earlyStop = new callbacks.EarlyStopping({ monitor: "val_loss", patience: 5, restoreBestWeights });
    await model.fit(xSmall, ySmall, {
      epochs: epochs(opts, 100, 40),
      validationData: [xVal, yVal],
      callbacks: [earlyStop],
      verbose: 0,
      ...distribute(opts),
    });
    const [valLoss] = await model.evaluate(xVal, yVal, { verbose: 0 });
    const stopped = earlyStop.stoppedEpoch > 0
      ? `stopped after epoch ${earlyStop.stoppedEpoch + 1}`
      : "ran all epochs";
    console.log(
      `restoreBestWeights: ${restoreBestWeights}: ${stopped}, best val_loss ${earlyStop.best!.toFixed(4)} ` +
        `at epoch ${earlyStop.bestEpoch + 1}; the kept weights give val_loss ${valLoss!.toFixed(4)}`,
    );
  }

  console.log("\n=== Mistake 4: Mismatching inputShape and the actual data shape ===");
  const images01 = images.div(255); // [n, 28, 28]
  model = build(); // expects flat [784]
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  try {
    await model.fit(images01, y, fitOptions); // Error!
  } catch (e) {
    console.log(describe(e));
  }
  // The fix: start with a Flatten layer
  model = new Sequential([
    new layers.Flatten({ inputShape: [28, 28] }), // Automatically flattens 28x28 to 784
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  history = await model.fit(images01, y, fitOptions);
  console.log(`With a Flatten layer: final training accuracy ${lastAccuracy(history)}`);

  console.log("\n=== Not a mistake: Dropout is off during predict and evaluate ===");
  model = new Sequential([
    new layers.Dense(128, { activation: "relu", inputShape: [784] }),
    new layers.Dropout(0.5),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  await model.fit(x, y, fitOptions);
  const first = await model.predict(x.slice(0, 100));
  const second = await model.predict(x.slice(0, 100));
  const difference = first.sub(second).abs().max().dataSync()[0]!;
  console.log(
    `Two predict calls on the same inputs: max difference ${difference} (identical: ${difference === 0})`,
  );
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
