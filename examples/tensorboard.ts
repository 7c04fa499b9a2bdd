/**
 * The chapter's TensorBoard example: a Fashion-MNIST classifier trained with a TensorBoard callback
 * (weight histograms every epoch, the model graph) and EarlyStopping, logging to a directory per run.
 */
import { join } from "node:path";
import { callbacks, datasets, layers, Sequential } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, outDir, parseExampleArgs, sample } from "./options.ts";

/** `YYYYmmdd-HHMMSS` in local time, as Python's `strftime("%Y%m%d-%H%M%S")`. */
function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-` +
    `${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Trains with TensorBoard logging and prints the command that shows the logs. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Load data
  const [[xTrain, yTrain], [xTest, yTest]] = await datasets.fashionMnist.loadData();
  const x = sample(opts, xTrain).reshape([-1, 784]).toFloat().div(255);
  const y = sample(opts, yTrain);
  const xt = sample(opts, xTest, 1000).reshape([-1, 784]).toFloat().div(255);
  const yt = sample(opts, yTest, 1000);

  // Create a unique log directory for each run
  const logDir = join(await outDir(opts), "logs", `fashion_${timestamp(new Date())}`);

  // Build model
  const model = new Sequential([
    new layers.Dense(256, { activation: "relu", inputShape: [784] }),
    new layers.Dropout(0.3),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: opts.seed });

  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });

  // TensorBoard callback with histogram logging
  const tbCallback = new callbacks.TensorBoard({
    logDir,
    histogramFreq: 1, // Log weight histograms every epoch
    writeGraph: true, // Log the computation graph
    updateFreq: "epoch",
  });

  const earlyStop = new callbacks.EarlyStopping({
    monitor: "val_loss",
    patience: 5,
    restoreBestWeights: true,
  });

  // Train
  await model.fit(x, y, {
    epochs: epochs(opts, 30),
    batchSize: 64,
    validationSplit: 0.15,
    callbacks: [tbCallback, earlyStop],
    verbose: 1,
    ...distribute(opts),
  });

  const [, testAcc] = await model.evaluate(xt, yt, { verbose: 0 });
  console.log(`\nTest accuracy: ${testAcc!.toFixed(4)}`);
  console.log(`\nTo view TensorBoard, run in terminal:`);
  console.log(`  tensorboard --logdir ${logDir}`);
  console.log(`Then open http://localhost:6006`);
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
