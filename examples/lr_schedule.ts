/**
 * The chapter's custom learning-rate schedule: Adam driven by ExponentialDecay (0.01, ×0.9 every 1000
 * steps, staircase), and a custom callback that prints the learning rate after each epoch.
 */
import { callbacks, layers, optimizers, Sequential } from "../mod.ts";
import { loadMnist } from "./mnist.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs, sample } from "./options.ts";

// Method 2: Using a custom callback
/** Prints the optimizer's current learning rate after every epoch. */
export class PrintLearningRate extends callbacks.Callback {
  override onEpochEnd(epoch: number): void {
    const currentLr = this.model.optimizer.learningRate;
    console.log(`  -> Learning rate after epoch ${epoch + 1}: ${currentLr.toFixed(6)}`);
  }
}

/** Trains with the schedule and prints the learning rate per epoch and the test accuracy. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Method 1: Using a learning rate schedule
  const initialLr = 0.01;
  const decaySteps = opts.quick ? 10 : 1000;

  const lrSchedule = new optimizers.schedules.ExponentialDecay({
    initialLearningRate: initialLr,
    decaySteps,
    decayRate: 0.9,
    staircase: true, // Decay in discrete steps, not continuously
  });

  const optimizer = new optimizers.Adam({ learningRate: lrSchedule });

  // Build and train with scheduled LR
  const [[xTrain, yTrain], [xTest, yTest]] = await loadMnist();
  const x = sample(opts, xTrain).reshape([-1, 784]).toFloat().div(255);
  const y = sample(opts, yTrain);
  const xt = sample(opts, xTest, 1000).reshape([-1, 784]).toFloat().div(255);
  const yt = sample(opts, yTest, 1000);

  const model = new Sequential([
    new layers.Dense(128, { activation: "relu", inputShape: [784] }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });

  model.compile({ optimizer, loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });

  await model.fit(x, y, {
    epochs: epochs(opts, 5, 3),
    batchSize: 128,
    validationSplit: 0.1,
    verbose: 1,
    callbacks: [new PrintLearningRate()],
    ...distribute(opts),
  });

  const [, testAcc] = await model.evaluate(xt, yt, { verbose: 0 });
  console.log(`\nTest accuracy: ${testAcc!.toFixed(4)}`);
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
