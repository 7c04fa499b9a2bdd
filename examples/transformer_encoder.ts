/**
 * A small transformer encoder for text classification, as Keras's "Text classification with
 * Transformer" example builds it: token and position embeddings added, one encoder block
 * (MultiHeadAttention and a feed-forward network, each with dropout, a residual Add and
 * LayerNormalization), GlobalAveragePooling1D and a softmax head. Shoal has no custom layers yet, so
 * the position embedding is an Embedding on a second input that holds each row's positions
 * `0, 1, …, MAX_LEN - 1`. The data are the synthetic movie reviews of examples/text_data.ts.
 */
import { Input, layers, Model, tf } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs } from "./options.ts";
import { encode, MAX_LEN, reviews, VOCABULARY } from "./text_data.ts";

/** Width of the token vectors, as in Keras's example. */
const EMBED_DIM = 32;
const NUM_HEADS = 2;
const FF_DIM = 32;

/** The encoder block: attention and feed-forward, each added back to its input and normalized. */
function encoderBlock(x: layers.SymbolicTensor): layers.SymbolicTensor {
  const attention = new layers.MultiHeadAttention({ numHeads: NUM_HEADS, keyDim: EMBED_DIM }).apply([x, x]);
  const out1 = new layers.LayerNormalization({ epsilon: 1e-6 }).apply(
    new layers.Add().apply([x, new layers.Dropout(0.1).apply(attention)]),
  );
  let ff = new layers.Dense(FF_DIM, { activation: "relu" }).apply(out1);
  ff = new layers.Dense(EMBED_DIM).apply(ff);
  return new layers.LayerNormalization({ epsilon: 1e-6 }).apply(
    new layers.Add().apply([out1, new layers.Dropout(0.1).apply(ff)]),
  );
}

/** Tokens and positions → embeddings → encoder block → pooled → Dense(20, relu) → Dense(2, softmax). */
export function transformerEncoder(seed: number): Model {
  const tokens = new Input({ shape: [MAX_LEN], name: "tokens" });
  const positions = new Input({ shape: [MAX_LEN], name: "positions" });
  const embedded = new layers.Add().apply([
    new layers.Embedding(VOCABULARY.length, EMBED_DIM).apply(tokens),
    new layers.Embedding(MAX_LEN, EMBED_DIM).apply(positions),
  ]);
  let x = new layers.GlobalAveragePooling1D().apply(encoderBlock(embedded));
  x = new layers.Dropout(0.1).apply(x);
  x = new layers.Dense(20, { activation: "relu" }).apply(x);
  x = new layers.Dropout(0.1).apply(x);
  const output = new layers.Dense(2, { activation: "softmax" }).apply(x);
  return new Model({ inputs: [tokens, positions], outputs: output, seed });
}

/** The positions input for `n` rows: `0, 1, …, MAX_LEN - 1` in every row. */
export function positionsFor(n: number): tf.Tensor2D {
  return tf.tidy(() =>
    tf.tile(tf.range(0, MAX_LEN, 1, "int32").reshape([1, MAX_LEN]), [n, 1]) as tf.Tensor2D
  );
}

/** Builds, trains and evaluates the encoder, then reads three reviews of its own. */
export async function main(opts: ExampleOptions): Promise<void> {
  const train = reviews(opts.quick ? 2400 : 10000, opts.seed);
  const test = reviews(opts.quick ? 400 : 2000, opts.seed + 1);
  console.log(
    `Synthetic reviews: ${train.x.shape[0]} for training, ${test.x.shape[0]} for testing, ` +
      `${VOCABULARY.length} words, padded to ${MAX_LEN} ids`,
  );
  const model = transformerEncoder(opts.seed);
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  model.summary();

  await model.fit({ tokens: train.x, positions: positionsFor(train.x.shape[0]) }, train.y, {
    epochs: epochs(opts, 6, 3),
    batchSize: 64,
    validationSplit: 0.2,
    verbose: 1,
    ...distribute(opts),
  });

  const [testLoss, testAccuracy] = await model.evaluate(
    { tokens: test.x, positions: positionsFor(test.x.shape[0]) },
    test.y,
    { verbose: 0 },
  );
  console.log(`Test loss: ${testLoss!.toFixed(4)}`);
  console.log(`Test accuracy: ${testAccuracy!.toFixed(4)}`);

  const mine = [
    "the acting was great and the music was fun",
    "the plot was not good and very dull",
    "it was never boring",
  ];
  const ids = tf.tensor2d(mine.map(encode), undefined, "int32");
  const probabilities = (await model.predict({ tokens: ids, positions: positionsFor(mine.length) }))
    .arraySync() as number[][];
  mine.forEach((text, i) =>
    console.log(`"${text}": positive with probability ${probabilities[i]![1]!.toFixed(3)}`)
  );
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
