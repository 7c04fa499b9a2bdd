/**
 * End-to-end tests of the Keras chapter's examples: each runs as its own process with `--quick`, and
 * its printed output and written files are checked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const RUN = new URL("../examples/run.ts", import.meta.url).pathname;

interface Run {
  stdout: string;
  stderr: string;
  out: string;
}

/** Runs `examples/run.ts NAME --quick --out <tmp> ...extra` and returns its output; fails on a non-zero exit. */
async function runExample(name: string, ...extra: string[]): Promise<Run> {
  const out = await Deno.makeTempDir({ prefix: `shoal-example-${name}-` });
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUN, name, "--quick", "--out", out, ...extra],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const run = { stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr), out };
  assert.equal(code, 0, `example ${name} exited with ${code}\n${run.stdout}\n${run.stderr}`);
  return run;
}

/** The number printed after `label`, e.g. `number(out, "Test accuracy:")`. */
function number(text: string, label: string): number {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = text.match(new RegExp(`${escaped}\\s*(-?\\d+(?:\\.\\d+)?(?:e-?\\d+)?)`));
  assert.ok(m, `no "${label} <number>" in output:\n${text}`);
  return Number(m[1]);
}

function inRange(value: number, lo: number, hi: number, what: string): void {
  assert.ok(value >= lo && value <= hi, `${what} = ${value}, expected within [${lo}, ${hi}]`);
}

async function startsWith(path: string, magic: number[]): Promise<boolean> {
  const bytes = await Deno.readFile(path);
  return magic.every((b, i) => bytes[i] === b);
}

/** The TensorBoard event files in `dir`, as paths. */
function eventFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.name.startsWith("events.out.tfevents."))
    .map((e) => join(dir, e.name));
}

const CLASS_NAMES = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot";
const PREDICTION = new RegExp(
  `^Predicted: (${CLASS_NAMES}) \\((\\d+\\.\\d)%\\), Actual: (${CLASS_NAMES})$`,
  "gm",
);

/** Checks the fashion_mnist output and returns its test accuracy. */
function checkFashionMnist(run: Run): number {
  const out = run.stdout;
  assert.match(out, /^Training data shape: \(60000, 28, 28\)$/m);
  assert.match(out, /^Test data shape: \(10000, 28, 28\)$/m);
  assert.match(out, /^Labels range: 0 to 9$/m);
  assert.match(out, /batch_normalization_1 \(BatchNormalization\)/);
  assert.match(out, /Total params: 570,506/);
  assert.match(out, /^Epoch 2\/2$/m);
  const accuracy = number(out, "Test accuracy:");
  inRange(accuracy, 0.55, 1, "test accuracy");
  inRange(number(out, "Test loss:"), 0, 1.5, "test loss");
  const predictions = [...out.matchAll(PREDICTION)];
  assert.equal(predictions.length, 5, out);
  // The first five Fashion-MNIST test labels.
  assert.deepEqual(predictions.map((m) => m[3]), ["Ankle boot", "Pullover", "Trouser", "Trouser", "Shirt"]);
  for (const m of predictions) inRange(Number(m[2]), 10, 100, "confidence");
  assert.ok(predictions.filter((m) => m[1] === m[3]).length >= 3, out);
  return accuracy;
}

let localAccuracy: number | undefined;

Deno.test("fashion_mnist prints shapes, summary, test metrics and five predictions", async () => {
  // The hyphenated spelling of `deno task train --example fashion-mnist` runs the same example.
  localAccuracy = checkFashionMnist(await runExample("fashion-mnist"));
});

Deno.test("an unknown example name is rejected with the closest name and the list", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUN, "fashion-mnsit"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 2, err);
  assert.match(err, /unknown example "fashion-mnsit"\. Did you mean fashion_mnist\?/);
  assert.match(err, /Examples: fashion_mnist, multi_input/);
});

Deno.test("fashion_mnist trains the same on two worker processes", async () => {
  const run = await runExample("fashion_mnist", "--workers", "2");
  const accuracy = checkFashionMnist(run);
  if (localAccuracy !== undefined) {
    assert.ok(
      Math.abs(accuracy - localAccuracy) < 0.05,
      `2 workers ${accuracy} vs in-process ${localAccuracy}`,
    );
  }
});

Deno.test("multi_input builds the two-input model and predicts a price", async () => {
  const { stdout } = await runExample("multi_input");
  for (const layer of ["numeric_features (InputLayer)", "text_embedding (InputLayer)", "price (Dense)"]) {
    assert.ok(stdout.includes(layer), `missing ${layer} in summary:\n${stdout}`);
  }
  assert.match(stdout, /concatenate \(Concatenate\).*dense_1\[0\]\[0\], dense_3\[0\]\[0\]/);
  assert.match(stdout, /Total params: 3,969/);
  assert.match(stdout, /val_mae: /);
  const losses = [...stdout.matchAll(/ - loss: (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 2, stdout);
  assert.ok(losses[1]! < losses[0]!, `loss did not decrease: ${losses}`);
  inRange(number(stdout, "Predicted price:"), -50, 150, "predicted price");
  assert.match(stdout, /Predicted price: -?\d+\.\d\d lakhs$/m);
});

Deno.test("learning_curves writes training_curves.png and the final accuracies", async () => {
  const { stdout, out } = await runExample("learning_curves");
  const png = join(out, "training_curves.png");
  assert.ok(await startsWith(png, [0x89, 0x50, 0x4e, 0x47]), "training_curves.png is not a PNG");
  assert.ok((await Deno.stat(png)).size > 10_000);
  assert.match(stdout, /^(Note: MNIST is not available .*; using Fashion-MNIST instead\.)?$/m);
  inRange(number(stdout, "Final training accuracy:"), 0.6, 1, "training accuracy");
  inRange(number(stdout, "Final validation accuracy:"), 0.6, 1, "validation accuracy");
});

Deno.test("lr_schedule prints the decayed learning rate after every epoch", async () => {
  const { stdout } = await runExample("lr_schedule");
  const printed = [...stdout.matchAll(/^ {2}-> Learning rate after epoch (\d+): (\d\.\d{6})$/gm)];
  assert.deepEqual(printed.map((m) => Number(m[1])), [1, 2, 3]);
  // --quick: 1,800 training rows at batch 128 = 15 steps per epoch; staircase decay by 0.9 every 10 steps.
  printed.forEach((m, k) => {
    const expected = 0.01 * 0.9 ** Math.floor((15 * (k + 1)) / 10);
    assert.equal(m[2], expected.toFixed(6), `epoch ${k + 1}`);
  });
  inRange(number(stdout, "Test accuracy:"), 0.55, 1, "test accuracy");
});

Deno.test("regularization prints the Train Acc / Val Acc / Gap table", async () => {
  const { stdout } = await runExample("regularization");
  assert.match(stdout, /^Model {8} Train Acc {4}Val Acc {6}Gap$/m);
  assert.match(stdout, /^-{42}$/m);
  const rows = [...stdout.matchAll(/^(none|dropout|l2) +(\d\.\d{4}) +(\d\.\d{4}) +(-?\d\.\d{4})$/gm)];
  assert.deepEqual(rows.map((r) => r[1]), ["none", "dropout", "l2"]);
  for (const [, name, train, val, gap] of rows) {
    inRange(Number(val), 0.6, 1, `${name} validation accuracy`);
    assert.ok(Math.abs(Number(train) - Number(val) - Number(gap)) < 2e-4, `${name}: gap is not train - val`);
  }
  inRange(Number(rows[0]![2]), 0.9, 1, "unregularized training accuracy");
});

Deno.test("save_resume saves .keras, resumes from the optimizer state and saves weights", async () => {
  const { stdout, out } = await runExample("save_resume");
  assert.ok(await startsWith(join(out, "checkpoint_epoch5.keras"), [0x50, 0x4b, 0x03, 0x04]), "not a zip");
  assert.ok(await startsWith(join(out, "final_weights.weights.h5"), [0x89, 0x48, 0x44, 0x46]), "not HDF5");
  assert.match(stdout, /=== Phase 1: Training for 5 epochs ===/);
  assert.match(stdout, /=== Phase 2: Loading and resuming training ===/);
  // --quick: 2,000 rows at batch 64 = 32 steps per epoch, 2 epochs before saving.
  assert.equal(number(stdout, "(optimizer step"), 64);
  assert.equal(number(stdout, "Restored optimizer step:"), 64);
  const loaded = number(stdout, "Loaded model test accuracy:");
  const final = number(stdout, "Final test accuracy after 10 total epochs:");
  inRange(loaded, 0.55, 1, "loaded accuracy");
  inRange(final, loaded - 0.05, 1, "final accuracy");
  assert.match(stdout, /Weights saved separately/);
});

Deno.test("tensorboard writes train and validation event files and prints the command", async () => {
  const { stdout, out } = await runExample("tensorboard");
  const logDir = stdout.match(/^ {2}tensorboard --logdir (.+)$/m)?.[1];
  assert.ok(logDir, stdout);
  assert.ok(logDir.startsWith(join(out, "logs", "fashion_")), logDir);
  assert.match(logDir, /fashion_\d{8}-\d{6}$/);
  for (const split of ["train", "validation"]) {
    const events = eventFiles(join(logDir, split));
    assert.equal(events.length, 1, `${split} event files: ${events}`);
  }
  // Weight histograms (histogramFreq 1) and the graph (writeGraph) make the train file much larger.
  const [train, validation] = ["train", "validation"].map((split) =>
    Deno.statSync(eventFiles(join(logDir, split))[0]!).size
  );
  assert.ok(validation! > 100, `validation event file has ${validation} bytes`);
  assert.ok(train! > 10 * validation!, `train ${train} bytes vs validation ${validation} bytes`);
  inRange(number(stdout, "Test accuracy:"), 0.55, 1, "test accuracy");
  assert.match(stdout, /^Then open http:\/\/localhost:6006$/m);
});

Deno.test("common_mistakes shows each mistake's message and the fix", async () => {
  const { stdout, stderr } = await runExample("common_mistakes");
  assert.match(stderr, /Warning: input 0 has values up to 255/);
  assert.match(stdout, /categorical_crossentropy expects one-hot labels of shape \[n, 10\]/);
  inRange(
    number(stdout, "With one-hot labels (utils.toCategorical): final training accuracy"),
    0.5,
    1,
    "one-hot",
  );
  const kept = [...stdout.matchAll(
    /^restoreBestWeights: (false|true): .*best val_loss (\d\.\d+) at epoch (\d+); the kept weights give val_loss (\d\.\d+)$/gm,
  )];
  assert.deepEqual(kept.map((m) => m[1]), ["false", "true"], stdout);
  const [without, withRestore] = kept;
  assert.ok(Math.abs(Number(withRestore![4]) - Number(withRestore![2])) < 2e-3, withRestore![0]);
  assert.ok(Number(without![4]) >= Number(without![2]) - 2e-3, without![0]);
  assert.match(stdout, /Error: .*784.*28|Error: .*28.*784/);
  inRange(number(stdout, "With a Flatten layer: final training accuracy"), 0.5, 1, "Flatten");
  assert.match(stdout, /Two predict calls on the same inputs: max difference 0 \(identical: true\)/);
});

/** Checks a text example's output; returns its test loss and accuracy. */
function checkTextExample(stdout: string): { loss: number; accuracy: number } {
  assert.match(
    stdout,
    /^Synthetic reviews: 2400 for training, 400 for testing, 241 words, padded to 24 ids$/m,
  );
  assert.match(stdout, /^Epoch 3\/3$/m);
  const predictions = [...stdout.matchAll(/^".+": positive with probability (\d\.\d{3})$/gm)];
  assert.equal(predictions.length, 3, stdout);
  return { loss: number(stdout, "Test loss:"), accuracy: number(stdout, "Test accuracy:") };
}

let textClassifierLoss: number | undefined;

Deno.test("text_classifier trains Embedding and a bidirectional LSTM on synthetic reviews", async () => {
  const { stdout } = await runExample("text_classifier");
  assert.match(stdout, /^First review: ".+" → label [01]$/m);
  assert.match(stdout, /bidirectional \(Bidirectional\) +│ \(None, 64\)/);
  assert.match(stdout, /Total params: 24,417/);
  const { loss, accuracy } = checkTextExample(stdout);
  inRange(accuracy, 0.6, 1, "test accuracy");
  textClassifierLoss = loss;
});

Deno.test("text_classifier on two worker processes sends the word ids and ends where one process does", async () => {
  const { stdout } = await runExample("text_classifier", "--workers", "2");
  const { loss, accuracy } = checkTextExample(stdout);
  inRange(accuracy, 0.6, 1, "test accuracy");
  if (textClassifierLoss !== undefined) {
    assert.ok(
      Math.abs(loss - textClassifierLoss) <= 2e-4,
      `2 workers ${loss} vs in-process ${textClassifierLoss}`,
    );
  }
});

Deno.test("transformer_encoder trains an encoder block on token and position embeddings", async () => {
  const { stdout } = await runExample("transformer_encoder");
  for (
    const layer of [
      "tokens (InputLayer)",
      "positions (InputLayer)",
      "multi_head_attention (MultiHeadAttention)",
    ]
  ) {
    assert.ok(stdout.includes(layer), `missing ${layer} in summary:\n${stdout}`);
  }
  const losses = [...stdout.matchAll(/ - loss: (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 3, stdout);
  assert.ok(losses[2]! < losses[0]!, `loss did not decrease: ${losses}`);
  inRange(checkTextExample(stdout).accuracy, 0.5, 1, "test accuracy");
});
