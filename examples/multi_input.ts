/**
 * The chapter's Functional API example: a house-price regression with two named inputs (5 numeric
 * features and a 50-dimensional text embedding), merged with Concatenate.
 */
import { Input, layers, Model, tf } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs } from "./options.ts";

/** Builds, trains and predicts with the two-input model. */
export async function main(opts: ExampleOptions): Promise<void> {
  // Scenario: predict house price using numeric features AND neighborhood text embedding

  // Numeric input (5 features: area, bedrooms, age, distance_to_metro, floor)
  const numericInput = new Input({ shape: [5], name: "numeric_features" });
  let x1 = new layers.Dense(32, { activation: "relu" }).apply(numericInput);
  x1 = new layers.Dense(16, { activation: "relu" }).apply(x1);

  // Text embedding input (pre-computed 50-dim embedding of neighborhood description)
  const textInput = new Input({ shape: [50], name: "text_embedding" });
  let x2 = new layers.Dense(32, { activation: "relu" }).apply(textInput);
  x2 = new layers.Dense(16, { activation: "relu" }).apply(x2);

  // Merge both paths
  const combined = new layers.Concatenate().apply([x1, x2]);
  let x = new layers.Dense(32, { activation: "relu" }).apply(combined);
  x = new layers.Dropout(0.2).apply(x);
  const output = new layers.Dense(1, { activation: "linear", name: "price" }).apply(x); // Regression output

  const model = new Model({ inputs: [numericInput, textInput], outputs: output, seed: opts.seed });

  model.compile({ optimizer: "adam", loss: "mse", metrics: ["mae"] });

  model.summary();

  // Generate dummy data for demonstration (seeded, like np.random.seed(42))
  const seed = opts.seed;
  const xNumeric = tf.randomUniform([1000, 5], 0, 1, "float32", seed);
  const xText = tf.randomUniform([1000, 50], 0, 1, "float32", seed + 1);
  const yPrice = tf.randomUniform([1000], 0, 1, "float32", seed + 2).mul(100); // Price in lakhs

  // Train
  await model.fit([xNumeric, xText], yPrice, {
    epochs: epochs(opts, 10),
    batchSize: 32,
    validationSplit: 0.2,
    verbose: 1,
    ...distribute(opts),
  });

  // Predict
  const sampleNumeric = tf.tensor2d([[0.8, 0.6, 0.3, 0.2, 0.5]]);
  const sampleText = tf.randomUniform([1, 50], 0, 1, "float32", seed + 3);
  const prediction = (await model.predict([sampleNumeric, sampleText])).arraySync() as number[][];
  console.log(`Predicted price: ${prediction[0]![0]!.toFixed(2)} lakhs`);
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
