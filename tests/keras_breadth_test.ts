/**
 * Keras 3.15 models beyond the chapter (recurrent, attention, residual, separable and 1-D convolutional), saved
 * by Keras with their expected outputs: each loads, predicts and evaluates as Keras did, and where
 * Shoal has the model's optimizer, one training step on the stored batch lands where Keras's did.
 */
import assert from "node:assert/strict";
import { type Model, models, tf } from "../mod.ts";
import { maxAbsDiff } from "./support/compare.ts";

const FIXTURES = new URL("./fixtures/keras_breadth/", import.meta.url).pathname;

interface Expected {
  input_dtypes: string[];
  inputs: number[][];
  expected: number[][];
  step_x: number[][];
  step_y: number[];
  loss_before: number;
  after_step_predictions: number[][];
}

async function expectedOf(name: string): Promise<Expected> {
  return JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}.expected.json`));
}

function tensorOf(rows: number[][], dtype: string): tf.Tensor {
  return tf.tensor(rows, undefined, dtype === "int32" ? "int32" : "float32");
}

async function predicted(model: Model, x: tf.Tensor): Promise<Float32Array> {
  const out = await model.predict(x, { verbose: 0 });
  const data = Float32Array.from(out.dataSync());
  out.dispose();
  return data;
}

/** Load, predict within 1e-5, evaluate the batch within 1e-5, and (when `step`) one fit step within 1e-4. */
async function checkFixture(name: string, opts: { step: boolean; compile?: boolean }): Promise<void> {
  const e = await expectedOf(name);
  const model = await models.loadModel(`${FIXTURES}${name}.keras`, { compile: opts.compile ?? true });
  const dtype = e.input_dtypes[0]!;
  const x = tensorOf(e.inputs, dtype);
  const diff = maxAbsDiff(await predicted(model, x), e.expected.flat());
  assert.ok(diff <= 1e-5, `${name}: predictions differ from Keras's by ${diff}`);
  if (!(opts.compile ?? true)) return;
  const stepX = tensorOf(e.step_x, dtype);
  const stepY = tf.tensor(e.step_y);
  const [loss] = await model.evaluate(stepX, stepY, { batchSize: e.step_y.length, verbose: 0 });
  assert.ok(Math.abs(loss! - e.loss_before) <= 1e-5, `${name}: loss ${loss} but Keras had ${e.loss_before}`);
  if (opts.step) {
    await model.fit(stepX, stepY, { epochs: 1, batchSize: e.step_y.length, shuffle: false, verbose: 0 });
    const after = maxAbsDiff(await predicted(model, x), e.after_step_predictions.flat());
    assert.ok(after <= 1e-4, `${name}: after one step, predictions differ from Keras's by ${after}`);
  }
  tf.dispose([x, stepX, stepY]);
}

Deno.test("Keras residual CNN (Conv2D, BatchNormalization, Add, ReLU, AveragePooling2D, GlobalAveragePooling2D)", async () => {
  await checkFixture("residual_cnn", { step: true });
});

Deno.test("Keras 1-D conv net (Conv1D valid and same, MaxPooling1D, GlobalAveragePooling1D)", async () => {
  await checkFixture("series_conv1d", { step: true });
});

Deno.test("Keras text LSTM (Embedding on int32 ids, LSTM) trains one step with its Adam state as Keras did", async () => {
  await checkFixture("text_lstm", { step: true });
});

Deno.test("Keras bidirectional GRU (reset_after, return_sequences, GlobalMaxPooling1D) trains one step with RMSprop as Keras did", async () => {
  await checkFixture("text_bigru", { step: true });
});

Deno.test("Keras transformer block (MultiHeadAttention, LayerNormalization, gelu) trains one step with AdamW and CosineDecay", async () => {
  await checkFixture("transformer_block", { step: true });
});

Deno.test("Keras separable CNN (DepthwiseConv2D, SeparableConv2D with strides, dilation and depth multiplier) trains one step with Adam as Keras did", async () => {
  await checkFixture("separable_cnn", { step: true });
});
