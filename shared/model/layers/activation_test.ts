import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const XS = [-2, -0.5, 0, 0.5, 2];

// Reference values at XS, from the formulas in float64 (Python `math`), and the same as
// keras.activations.* in Keras 3.15.1 to float32 precision.
const EXPECTED: Record<string, number[]> = {
  relu: [0, 0, 0, 0.5, 2],
  linear: XS,
  // 1 / (1 + e^-x)
  sigmoid: [0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.8807970779778823],
  tanh: [-0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9640275800758169],
  // x for x > 0, e^x - 1 otherwise
  elu: [-0.8646647167633873, -0.3934693402873666, 0, 0.5, 2],
  // exact form 0.5·x·(1 + erf(x/√2)), Keras 3's default (approximate=False)
  gelu: [-0.04550026389635842, -0.15426876936299344, 0, 0.34573123063700656, 1.9544997361036416],
  // e^x / Σ e^x over the 5 values
  softmax: [
    0.012554708844463728,
    0.056266301409509716,
    0.09276744795748328,
    0.15294766467606982,
    0.6854638771124735,
  ],
};

for (const [name, expected] of Object.entries(EXPECTED)) {
  Deno.test(`Activation("${name}") matches its formula`, () => {
    const layer = new layers.Activation(name, { name: "act" });
    assert.deepEqual(layer.apply(new Input({ shape: [5] })).shape, [5]);
    const ctx = context();
    const y = layer.call([tf.tensor2d([XS])], [], ctx);
    assertClose(y.dataSync(), expected);
    assert.deepEqual(layer.getConfig().activation, name);
    // softmax and sigmoid keep their input as logits for the loss.
    assert.equal(ctx.logits.has("act"), name === "softmax" || name === "sigmoid");
  });
}

Deno.test("Activation softmax normalizes each row separately", () => {
  const y = new layers.Activation("softmax").call([tf.tensor2d([[0, 0], [0, Math.log(3)]])], [], context());
  assertClose(y.dataSync(), [0.5, 0.5, 0.25, 0.75]);
});

Deno.test("Activation gelu has the exact-erf gradient Φ(x) + x·φ(x)", () => {
  const layer = new layers.Activation("gelu");
  const grad = tf.grad((x: tf.Tensor) => tf.sum(layer.call([x], [], context())))(tf.tensor1d([1]));
  // Φ(1) + φ(1) = 0.8413447460685429 + 0.24197072451914337
  assertClose(grad.dataSync(), [1.0833154705876863], 1e-5);
});

Deno.test("Activation with an unknown name lists the valid names", () => {
  assert.throws(
    () => new layers.Activation("swishy"),
    /Unknown activation: 'swishy'. Use one of: relu, sigmoid, softmax, tanh, linear, elu, gelu/,
  );
});
