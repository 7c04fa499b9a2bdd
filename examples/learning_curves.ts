/**
 * The chapter's learning-curves example: a 128-64-10 model on MNIST (Fashion-MNIST offline), its
 * History plotted as loss and accuracy panels to `training_curves.png`.
 */
import { join } from "node:path";
import { layers, Sequential, utils } from "../mod.ts";
import { loadMnist } from "./mnist.ts";
import { distribute, epochs, type ExampleOptions, outDir, parseExampleArgs, sample } from "./options.ts";

/** Trains silently and writes `training_curves.png` into the output directory. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Load and preprocess MNIST
  const [[xTrain, yTrain]] = await loadMnist();
  const x = sample(opts, xTrain).reshape([-1, 784]).toFloat().div(255);
  const y = sample(opts, yTrain);

  // Simple model
  const model = new Sequential([
    new layers.Dense(128, { activation: "relu", inputShape: [784] }),
    new layers.Dense(64, { activation: "relu" }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });

  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });

  // Train and capture history
  const history = await model.fit(x, y, {
    epochs: epochs(opts, 15, 3),
    batchSize: 32,
    validationSplit: 0.2,
    verbose: 0,
    ...distribute(opts),
  });

  // Plot loss and accuracy curves
  const path = join(await outDir(opts), "training_curves.png");
  await utils.plotHistory(history, path);
  console.log(`Learning curves saved to ${path}`);

  console.log(`Final training accuracy: ${history.history.accuracy!.at(-1)!.toFixed(4)}`);
  console.log(`Final validation accuracy: ${history.history.val_accuracy!.at(-1)!.toFixed(4)}`);
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
