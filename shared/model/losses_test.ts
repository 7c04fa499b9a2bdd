import assert from "node:assert/strict";
import { losses, tf } from "../../mod.ts";
import type { OutputValue } from "./losses.ts";

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const P = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]];
const IDS = [0, 2];
const ONE_HOT = [[1, 0, 0], [0, 0, 1]];
const Z = [[2, -1, 0.5], [0, 3, -2]];

function softmaxRow(z: number[]): number[] {
  const e = z.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function perSample(name: string, y: tf.Tensor, pred: OutputValue): number[] {
  return Array.from(losses.perSampleLoss(losses.resolveLoss(name), y, pred).dataSync());
}

Deno.test("sparse_categorical_crossentropy is -log p[label] per sample", () => {
  const out = perSample("sparse_categorical_crossentropy", tf.tensor1d(IDS), { output: tf.tensor2d(P) });
  assertClose(out, [-Math.log(0.7), -Math.log(0.6)]);
  // Labels given as a column [n, 1] work the same.
  const col = perSample("sparse_categorical_crossentropy", tf.tensor2d([[0], [2]]), {
    output: tf.tensor2d(P),
  });
  assertClose(col, [-Math.log(0.7), -Math.log(0.6)]);
});

Deno.test("categorical_crossentropy is -Σ y·log p per sample, and rescales outputs that do not sum to 1", () => {
  assertClose(perSample("categorical_crossentropy", tf.tensor2d(ONE_HOT), { output: tf.tensor2d(P) }), [
    -Math.log(0.7),
    -Math.log(0.6),
  ]);
  // Keras divides by the row sum first: [1.4, 0.4, 0.2] → [0.7, 0.2, 0.1].
  assertClose(
    perSample("categorical_crossentropy", tf.tensor2d([[1, 0, 0]]), {
      output: tf.tensor2d([[1.4, 0.4, 0.2]]),
    }),
    [
      -Math.log(0.7),
    ],
  );
  // Probabilities are clipped to [1e-7, 1 - 1e-7]: -log(1e-7) = 16.118.
  assertClose(
    perSample("categorical_crossentropy", tf.tensor2d([[0, 1]]), { output: tf.tensor2d([[1, 0]]) }),
    [
      -Math.log(1e-7),
    ],
    1e-3,
  );
});

Deno.test("cross-entropy from softmax logits equals the probability path, and stays exact where it clips", () => {
  const probs = Z.map(softmaxRow);
  const expected = [-Math.log(probs[0]![0]!), -Math.log(probs[1]![2]!)];
  const withLogits: OutputValue = {
    output: tf.tensor2d(probs),
    logits: { tensor: tf.tensor2d(Z), activation: "softmax" },
  };
  const plain: OutputValue = { output: tf.tensor2d(probs) };
  for (
    const [name, y] of [["sparse_categorical_crossentropy", tf.tensor1d(IDS)], [
      "categorical_crossentropy",
      tf.tensor2d(ONE_HOT),
    ]] as const
  ) {
    assertClose(perSample(name, y, withLogits), expected);
    assertClose(perSample(name, y, plain), expected);
  }
  // Logits [100, 0], label 1: the logits path gives the true 100; probabilities clip at -log(1e-7).
  const far: OutputValue = {
    output: tf.tensor2d([[1, 0]]),
    logits: { tensor: tf.tensor2d([[100, 0]]), activation: "softmax" },
  };
  assertClose(perSample("sparse_categorical_crossentropy", tf.tensor1d([1]), far), [100], 1e-3);
  assertClose(
    perSample("sparse_categorical_crossentropy", tf.tensor1d([1]), { output: tf.tensor2d([[1, 0]]) }),
    [
      -Math.log(1e-7),
    ],
    1e-3,
  );
});

Deno.test("binary_crossentropy is the mean over the last axis of -(y log p + (1-y) log(1-p))", () => {
  const p = [[0.9, 0.2], [0.4, 0.5]];
  const y = [[1, 0], [0, 1]];
  const bce = (yv: number, pv: number) => -(yv * Math.log(pv) + (1 - yv) * Math.log(1 - pv));
  const expected = p.map((row, i) => (bce(y[i]![0]!, row[0]!) + bce(y[i]![1]!, row[1]!)) / 2);
  assertClose(perSample("binary_crossentropy", tf.tensor2d(y), { output: tf.tensor2d(p) }), expected);
  // One sigmoid unit with labels [n]: from logits and from probabilities agree.
  const z = [2, -0.5, 0];
  const sig = z.map((v) => 1 / (1 + Math.exp(-v)));
  const labels = tf.tensor1d([1, 1, 0]);
  const want = [bce(1, sig[0]!), bce(1, sig[1]!), bce(0, sig[2]!)];
  const logits: OutputValue = {
    output: tf.tensor2d(sig, [3, 1]),
    logits: { tensor: tf.tensor2d(z, [3, 1]), activation: "sigmoid" },
  };
  assertClose(perSample("binary_crossentropy", labels, logits), want);
  assertClose(perSample("binary_crossentropy", labels, { output: tf.tensor2d(sig, [3, 1]) }), want);
  // A large logit: log(1 + e^-30) + 30·(1-y) stays exact (30), where probabilities clip to -log(1e-7).
  const far: OutputValue = {
    output: tf.tensor2d([[1]]),
    logits: { tensor: tf.tensor2d([[30]]), activation: "sigmoid" },
  };
  assertClose(perSample("binary_crossentropy", tf.tensor1d([0]), far), [30], 1e-3);
});

Deno.test("mse and mae are per-sample means of squared and absolute errors", () => {
  const y = tf.tensor2d([[1, 2], [0, -1]]);
  const out = { output: tf.tensor2d([[1.5, 1], [2, -1]]) };
  assertClose(perSample("mse", y, out), [(0.25 + 1) / 2, 4 / 2]);
  assertClose(perSample("mean_squared_error", y, out), [(0.25 + 1) / 2, 4 / 2]);
  assertClose(perSample("mae", y, out), [(0.5 + 1) / 2, 2 / 2]);
  assertClose(perSample("mean_absolute_error", y, out), [(0.5 + 1) / 2, 2 / 2]);
  // One output unit with labels [n].
  assertClose(perSample("mse", tf.tensor1d([1, 2]), { output: tf.tensor2d([[3], [2]]) }), [4, 0]);
});

Deno.test("resolveLoss maps aliases and lists valid names for unknown ones", () => {
  assert.equal(losses.resolveLoss("mse"), "mean_squared_error");
  assert.equal(losses.resolveLoss("mae"), "mean_absolute_error");
  assert.throws(
    () => losses.resolveLoss("hinge"),
    /Unknown loss: 'hinge'. Use one of: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mse/,
  );
});

Deno.test("A rank-3 output gets one loss per sample: the mean over its steps, logits or not", () => {
  // 2 samples × 2 steps × 3 classes.
  const z = [[Z[0]!, Z[1]!], [Z[1]!, Z[0]!]];
  const probs = z.map((s) => s.map(softmaxRow));
  const ids = [[0, 2], [1, 1]];
  const expected = probs.map((s, i) => -(Math.log(s[0]![ids[i]![0]!]!) + Math.log(s[1]![ids[i]![1]!]!)) / 2);
  const y = tf.tensor2d(ids);
  const output = tf.tensor3d(probs);
  assertClose(perSample("sparse_categorical_crossentropy", y, { output }), expected);
  assertClose(
    perSample("sparse_categorical_crossentropy", y, {
      output,
      logits: { tensor: tf.tensor3d(z), activation: "softmax" },
    }),
    expected,
  );
  // mse over [n, steps, units] averages steps and units.
  assertClose(perSample("mse", tf.zeros([1, 2, 2]), { output: tf.tensor3d([[[1, 2], [3, 4]]]) }), [
    (1 + 4 + 9 + 16) / 4,
  ]);
});

/** Per-sample losses of a loss with options, and their gradient with respect to the output. */
function withGrad(
  loss: losses.LossSpec,
  y: tf.Tensor,
  pred: OutputValue,
): { values: number[]; grad: number[] } {
  const values = Array.from(losses.perSampleLoss(loss, y, pred).dataSync());
  const fromLogits = pred.logits !== undefined;
  const grad = tf.grad((t: tf.Tensor) => {
    const p: OutputValue = fromLogits
      ? { output: tf.softmax(t), logits: { tensor: t, activation: "softmax" } }
      : { output: t };
    return tf.sum(losses.perSampleLoss(loss, y, p));
  })(fromLogits ? pred.logits!.tensor : pred.output);
  return { values, grad: Array.from(grad.dataSync()) };
}

Deno.test("huber is Keras's: 0.5·e² within delta, delta·|e| - 0.5·delta² beyond, mean over the last axis", () => {
  const y = tf.tensor2d([[0, 0], [1, -1]]);
  const out = tf.tensor2d([[0.5, 3], [1, -4]]);
  // e = [0.5, 3], [0, -3]; delta 2: [0.125, 2·3 - 2], [0, 4].
  const { values, grad } = withGrad(new losses.Huber({ delta: 2 }), y, { output: out });
  assertClose(values, [(0.125 + 4) / 2, (0 + 4) / 2]);
  // d/dp: e within delta, delta·sign(e) beyond, over the 2 values averaged.
  assertClose(grad, [0.5 / 2, 2 / 2, 0, -2 / 2]);
  // Default delta 1, and the "huber" name.
  assertClose(perSample("huber", tf.tensor2d([[0]]), { output: tf.tensor2d([[3]]) }), [3 - 0.5]);
  assert.throws(() => new losses.Huber({ delta: 0 }), /delta must be a finite number > 0: received 0/);
});

Deno.test("kl_divergence is Σ y·log(y/p) with both clipped to [1e-7, 1]", () => {
  const y = [[0.5, 0.5, 0], [0, 1, 0]];
  const p = [[0.25, 0.5, 0.25], [0.2, 0.7, 0.1]];
  const kl = (yr: number[], pr: number[]) =>
    yr.reduce((s, yv, i) => {
      const a = Math.max(yv, 1e-7), b = Math.max(pr[i]!, 1e-7);
      return s + a * Math.log(a / b);
    }, 0);
  const { values, grad } = withGrad(new losses.KLDivergence(), tf.tensor2d(y), { output: tf.tensor2d(p) });
  assertClose(values, [kl(y[0]!, p[0]!), kl(y[1]!, p[1]!)]);
  assertClose(perSample("kld", tf.tensor2d(y), { output: tf.tensor2d(p) }), values);
  // d/dp = -y/p (y clipped).
  assertClose(grad, y.flatMap((r, i) => r.map((yv, k) => -Math.max(yv, 1e-7) / p[i]![k]!)), 1e-4);
});

Deno.test("categorical_crossentropy with labelSmoothing mixes the labels with 1/classes, from logits too", () => {
  const s = 0.3;
  const smoothed = ONE_HOT.map((r) => r.map((v) => v * (1 - s) + s / 3));
  const probs = Z.map(softmaxRow);
  const expected = smoothed.map((r, i) => -r.reduce((a, v, k) => a + v * Math.log(probs[i]![k]!), 0));
  const loss = new losses.CategoricalCrossentropy({ labelSmoothing: s });
  const logits: OutputValue = {
    output: tf.tensor2d(probs),
    logits: { tensor: tf.tensor2d(Z), activation: "softmax" },
  };
  const { values, grad } = withGrad(loss, tf.tensor2d(ONE_HOT), logits);
  assertClose(values, expected);
  assertClose(perSample("categorical_crossentropy", tf.tensor2d(smoothed), logits), expected);
  // d/dlogits = softmax - smoothed labels.
  assertClose(grad, probs.flatMap((r, i) => r.map((v, k) => v - smoothed[i]![k]!)));
  assert.throws(
    () => new losses.CategoricalCrossentropy({ labelSmoothing: 1.5 }),
    /labelSmoothing must be in \[0, 1\]: received 1.5/,
  );
});

Deno.test("binary_crossentropy with labelSmoothing moves the labels toward 0.5", () => {
  const bce = (yv: number, pv: number) => -(yv * Math.log(pv) + (1 - yv) * Math.log(1 - pv));
  const loss = new losses.BinaryCrossentropy({ labelSmoothing: 0.2 });
  const out = losses.perSampleLoss(loss, tf.tensor1d([1, 0]), { output: tf.tensor2d([[0.8], [0.3]]) });
  assertClose(Array.from(out.dataSync()), [bce(0.9, 0.8), bce(0.1, 0.3)]);
});

Deno.test("losses with options round-trip through Keras's compile_config; plain names stay strings", () => {
  assert.equal(losses.lossToConfig(losses.toLossSpec("mse")), "mean_squared_error");
  const huber = losses.lossToConfig(new losses.Huber({ delta: 2.5 }));
  assert.deepEqual(huber, {
    module: "keras.losses",
    class_name: "Huber",
    config: { name: "huber_loss", reduction: "sum_over_batch_size", delta: 2.5 },
    registered_name: null,
  });
  assert.deepEqual(losses.lossFromConfig(huber), { name: "huber", delta: 2.5 });
  const cce = losses.lossToConfig(new losses.CategoricalCrossentropy({ labelSmoothing: 0.1 }));
  assert.deepEqual(losses.lossFromConfig(cce), { name: "categorical_crossentropy", labelSmoothing: 0.1 });
  // As Keras 3.15 writes a KLDivergence() object.
  assert.deepEqual(
    losses.lossFromConfig({
      module: "keras.losses",
      class_name: "KLDivergence",
      config: { name: "kl_divergence", reduction: "sum_over_batch_size" },
    }),
    { name: "kl_divergence" },
  );
  assert.throws(
    () => losses.lossFromConfig({ class_name: "Huber", config: { reduction: "sum", delta: 1 } }),
    /reduction="sum": Shoal reduces as Keras's default, "sum_over_batch_size"/,
  );
  assert.throws(
    () => losses.lossFromConfig({ class_name: "CategoricalCrossentropy", config: { from_logits: true } }),
    /from_logits=true/,
  );
});
