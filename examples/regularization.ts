/**
 * The chapter's regularization comparison: the same small network without regularization, with
 * Dropout(0.5) and with L2(0.01), trained on 150 samples of an easy-to-overfit random problem, then a
 * table of final training and validation accuracy and their gap.
 */
import { layers, regularizers, Sequential, tf } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs } from "./options.ts";

/** The three variants compared. */
export type RegularizationKind = "none" | "dropout" | "l2";

/** 128-64-1 with optional Dropout(0.5) after each hidden layer or L2(0.01) on their kernels. */
export function buildModel(regularization: RegularizationKind, seed: number): Sequential {
  const layersList: (layers.Dense | layers.Dropout)[] = [];
  if (regularization === "l2") {
    layersList.push(
      new layers.Dense(128, {
        activation: "relu",
        inputShape: [20],
        kernelRegularizer: regularizers.l2(0.01),
      }),
    );
    layersList.push(new layers.Dense(64, { activation: "relu", kernelRegularizer: regularizers.l2(0.01) }));
  } else {
    layersList.push(new layers.Dense(128, { activation: "relu", inputShape: [20] }));
    if (regularization === "dropout") layersList.push(new layers.Dropout(0.5));
    layersList.push(new layers.Dense(64, { activation: "relu" }));
    if (regularization === "dropout") layersList.push(new layers.Dropout(0.5));
  }
  layersList.push(new layers.Dense(1, { activation: "sigmoid" }));

  const model = new Sequential(layersList, { seed });
  model.compile({ optimizer: "adam", loss: "binary_crossentropy", metrics: ["accuracy"] });
  return model;
}

/** Trains the three variants and prints the comparison table. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Create a small dataset that is easy to overfit
  const x = tf.randomNormal([200, 20], 0, 1, "float32", opts.seed);
  const noise = tf.randomNormal([200, 1], 0, 1, "float32", opts.seed + 1).mul(0.1);
  const y = x.slice([0, 0], [-1, 1]).add(x.slice([0, 1], [-1, 1]).mul(0.5)).add(noise).greater(0).toFloat();

  const xTrain = x.slice(0, 150), xTest = x.slice(150);
  const yTrain = y.slice(0, 150), yTest = y.slice(150);

  const results: Partial<Record<RegularizationKind, { train: number; val: number }>> = {};
  for (const regType of ["none", "dropout", "l2"] as const) {
    const model = buildModel(regType, opts.seed);
    const history = await model.fit(xTrain, yTrain, {
      epochs: epochs(opts, 100, 30),
      batchSize: 16,
      validationData: [xTest, yTest],
      verbose: 0,
      ...distribute(opts),
    });
    const trainAcc = history.history.accuracy!.at(-1)!;
    const valAcc = history.history.val_accuracy!.at(-1)!;
    results[regType] = { train: trainAcc, val: valAcc };
  }

  console.log(
    `${"Model".padEnd(12)} ${"Train Acc".padStart(10)} ${"Val Acc".padStart(10)} ${"Gap".padStart(8)}`,
  );
  console.log("-".repeat(42));
  for (const [name, r] of Object.entries(results)) {
    const gap = r.train - r.val;
    console.log(
      `${name.padEnd(12)} ${r.train.toFixed(4).padStart(10)} ${r.val.toFixed(4).padStart(10)} ${
        gap.toFixed(4).padStart(8)
      }`,
    );
  }
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
