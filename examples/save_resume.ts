/**
 * The chapter's save/load/resume example: train 5 epochs, save the whole model (architecture, weights,
 * optimizer state) as `.keras`, load it back, evaluate, continue 5 more epochs from the restored
 * optimizer state, and save the weights alone as `.weights.h5`.
 */
import { join } from "node:path";
import { layers, models, Sequential } from "../mod.ts";
import { loadMnist } from "./mnist.ts";
import { distribute, epochs, type ExampleOptions, outDir, parseExampleArgs, sample } from "./options.ts";

/** Runs both phases and writes `checkpoint_epoch5.keras` and `final_weights.weights.h5`. */
export async function main(opts: ExampleOptions): Promise<void> {
  const dir = await outDir(opts);

  // Load data
  const [[xTrain, yTrain], [xTest, yTest]] = await loadMnist();
  const x = sample(opts, xTrain).reshape([-1, 784]).toFloat().div(255);
  const y = sample(opts, yTrain);
  const xt = sample(opts, xTest, 1000).reshape([-1, 784]).toFloat().div(255);
  const yt = sample(opts, yTest, 1000);

  // Build and train for 5 epochs
  const model = new Sequential([
    new layers.Dense(128, { activation: "relu", inputShape: [784] }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });

  console.log("=== Phase 1: Training for 5 epochs ===");
  await model.fit(x, y, { epochs: epochs(opts, 5), batchSize: 64, verbose: 1, ...distribute(opts) });

  // Save the complete model
  const checkpoint = join(dir, "checkpoint_epoch5.keras");
  await model.save(checkpoint);
  console.log(`\nModel saved to ${checkpoint} (optimizer step ${model.optimizer.iterations}).`);

  // Simulate loading in a new session
  console.log("\n=== Phase 2: Loading and resuming training ===");
  const loadedModel = await models.loadModel(checkpoint);
  console.log(`Restored optimizer step: ${loadedModel.optimizer.iterations}`);

  // Verify it works
  const [, acc] = await loadedModel.evaluate(xt, yt, { verbose: 0 });
  console.log(`Loaded model test accuracy: ${acc!.toFixed(4)}`);

  // Continue training for 5 more epochs
  await loadedModel.fit(x, y, { epochs: epochs(opts, 5), batchSize: 64, verbose: 1, ...distribute(opts) });

  // Final evaluation
  const [, finalAcc] = await loadedModel.evaluate(xt, yt, { verbose: 0 });
  console.log(`\nFinal test accuracy after 10 total epochs: ${finalAcc!.toFixed(4)}`);

  // Save only weights
  const weights = join(dir, "final_weights.weights.h5");
  await loadedModel.saveWeights(weights);
  console.log(`Weights saved separately to ${weights}.`);
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
