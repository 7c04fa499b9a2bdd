/**
 * The chapter's complete Fashion-MNIST classifier with callbacks: 512-256-128 with BatchNormalization
 * and Dropout, Adam 1e-3, EarlyStopping and ReduceLROnPlateau, then test accuracy and five predictions.
 */
import { callbacks, datasets, layers, optimizers, Sequential } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs, sample } from "./options.ts";

/** Fashion-MNIST's class names, by label. */
export const CLASS_NAMES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Trains, evaluates and predicts as the chapter's example does. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Load Fashion-MNIST dataset
  let [[xTrain, yTrain], [xTest, yTest]] = await datasets.fashionMnist.loadData();

  console.log(`Training data shape: (${xTrain.shape.join(", ")})`);
  console.log(`Test data shape: (${xTest.shape.join(", ")})`);
  console.log(`Labels range: ${yTrain.min().dataSync()[0]} to ${yTrain.max().dataSync()[0]}`);

  // Preprocess: flatten 28x28 to 784 and normalize to [0, 1]
  xTrain = sample(opts, xTrain).reshape([-1, 784]).toFloat().div(255);
  yTrain = sample(opts, yTrain);
  xTest = sample(opts, xTest, 1000).reshape([-1, 784]).toFloat().div(255);
  yTest = sample(opts, yTest, 1000);

  // Build model
  const model = new Sequential([
    new layers.Dense(512, { activation: "relu", inputShape: [784] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(256, { activation: "relu" }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });

  model.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.001 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });

  model.summary();

  // Train
  await model.fit(xTrain, yTrain, {
    epochs: epochs(opts, 50),
    batchSize: 64,
    validationSplit: 0.15,
    callbacks: [
      new callbacks.EarlyStopping({ monitor: "val_loss", patience: 5, restoreBestWeights: true }),
      new callbacks.ReduceLROnPlateau({ monitor: "val_loss", factor: 0.5, patience: 3, minLr: 1e-6 }),
    ],
    verbose: 1,
    ...distribute(opts),
  });

  // Evaluate
  const [testLoss, testAcc] = await model.evaluate(xTest, yTest, { verbose: 0 });
  console.log(`\nTest accuracy: ${testAcc!.toFixed(4)}`);
  console.log(`Test loss: ${testLoss!.toFixed(4)}`);

  // Predict on a few samples
  const predictions = (await model.predict(xTest.slice(0, 5))).arraySync() as number[][];
  const actual = yTest.slice(0, 5).arraySync() as number[];
  for (let i = 0; i < 5; i++) {
    const p = predictions[i]!;
    const confidence = Math.max(...p);
    const predicted = CLASS_NAMES[p.indexOf(confidence)];
    console.log(
      `Predicted: ${predicted} (${(confidence * 100).toFixed(1)}%), Actual: ${CLASS_NAMES[actual[i]!]}`,
    );
  }
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
