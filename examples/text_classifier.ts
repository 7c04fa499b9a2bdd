/**
 * A text classifier as Keras's "Bidirectional LSTM on IMDB" example builds it: Embedding → Bidirectional
 * LSTM → Dense(1, sigmoid), trained with binary cross-entropy. The data are synthetic movie reviews
 * (examples/text_data.ts: filler words, opinions such as "great" or "not boring"; the label says whether
 * the opinions add up positive), because no text corpus is available offline; with `--workers N` the
 * integer word ids travel to the workers like any other input.
 */
import { layers, optimizers, Sequential, tf } from "../mod.ts";
import { distribute, epochs, type ExampleOptions, parseExampleArgs } from "./options.ts";
import { decode, encode, MAX_LEN, reviews, VOCABULARY } from "./text_data.ts";

/** Embedding(vocabulary, 32) → Bidirectional(LSTM(32)) → Dropout(0.2) → Dense(1, sigmoid). */
export function textClassifier(seed: number): Sequential {
  return new Sequential([
    new layers.Embedding(VOCABULARY.length, 32, { inputShape: [MAX_LEN] }),
    new layers.Bidirectional(new layers.LSTM(32)),
    new layers.Dropout(0.2),
    new layers.Dense(1, { activation: "sigmoid" }),
  ], { seed });
}

/** Builds, trains and evaluates the classifier, then reads three reviews of its own. */
export async function main(opts: ExampleOptions): Promise<void> {
  const train = reviews(opts.quick ? 2400 : 10000, opts.seed);
  const test = reviews(opts.quick ? 400 : 2000, opts.seed + 1);
  console.log(
    `Synthetic reviews: ${train.x.shape[0]} for training, ${test.x.shape[0]} for testing, ` +
      `${VOCABULARY.length} words, padded to ${MAX_LEN} ids`,
  );
  const firstIds = train.x.slice(0, 1).dataSync();
  console.log(`First review: "${decode(firstIds)}" → label ${train.y.dataSync()[0]}`);

  const model = textClassifier(opts.seed);
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.01 }),
    loss: "binary_crossentropy",
    metrics: ["accuracy"],
  });
  model.summary();

  await model.fit(train.x, train.y, {
    epochs: epochs(opts, 6, 3),
    batchSize: 64,
    validationSplit: 0.2,
    verbose: 1,
    ...distribute(opts),
  });

  const [testLoss, testAccuracy] = await model.evaluate(test.x, test.y, { verbose: 0 });
  console.log(`Test loss: ${testLoss!.toFixed(4)}`);
  console.log(`Test accuracy: ${testAccuracy!.toFixed(4)}`);

  const mine = [
    "the acting was great and the music was fun",
    "the plot was not good and very dull",
    "it was never boring",
  ];
  const probabilities = (await model.predict(tf.tensor2d(mine.map(encode), undefined, "int32"))).dataSync();
  mine.forEach((text, i) =>
    console.log(`"${text}": positive with probability ${probabilities[i]!.toFixed(3)}`)
  );
}

if (import.meta.main) await main(parseExampleArgs(Deno.args).options);
