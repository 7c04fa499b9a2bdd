import assert from "node:assert/strict";
import { initBackend, Input, layers, tf } from "../../../mod.ts";
/** The matrix products a function runs, as `[rows, columns]` of their outputs. */
async function matMuls(run: () => tf.Tensor): Promise<number[][]> {
  const profile = await tf.profile(() => {
    tf.dispose(run());
  });
  return profile.kernels
    .filter((k) => k.name === "BatchMatMul" || k.name === "_FusedMatMul")
    .map((k) => k.outputShapes[0]!.slice(-2) as number[]);
}

Deno.test("On wasm-blas a recurrent layer projects the whole sequence's inputs in one matrix product", async () => {
  const backend = await initBackend("wasm-blas");
  assert.equal(backend.name, "wasm-blas");
  const [batch, steps, features, units] = [3, 7, 5, 4];
  for (const [layer, gates] of [[new layers.LSTM(units), 4], [new layers.SimpleRNN(units), 1]] as const) {
    layer.apply(new Input({ shape: [steps, features] }));
    const x = tf.randomUniform([batch, steps, features]);
    const weights = layer.weightSpecs.map((s) => tf.randomUniform([...s.shape]));
    const products = await matMuls(() => layer.call([x], weights));
    // One product over all batch·steps rows for the inputs, then one per step for the recurrent state.
    assert.deepEqual(
      products[0],
      [batch * steps, gates * units],
      `${layer.className}: ${JSON.stringify(products)}`,
    );
    assert.equal(products.length, 1 + steps, `${layer.className}: ${JSON.stringify(products)}`);
    assert.ok(products.slice(1).every(([rows]) => rows === batch), JSON.stringify(products));
    tf.dispose([x, ...weights]);
  }
});

function values(shape: readonly number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, (_, i) => Math.sin(seed + i * 0.37)), [...shape]);
}

/**
 * Running backwards over x is running forwards over x reversed in time, so both give the same
 * gradients for the same weights. (tfjs's tape holds the array `unstack` returns: reversing it in
 * place once paired each step's gradient with the mirrored step.)
 */
for (
  const make of [
    (o: { goBackwards: boolean }) => new layers.GRU(3, o),
    (o: { goBackwards: boolean }) => new layers.LSTM(3, o),
  ]
) {
  Deno.test(`${make({ goBackwards: false }).className} goBackwards has the gradients of the forward layer on reversed input`, () => {
    const x = values([2, 4, 5], 1);
    const grads = (goBackwards: boolean, input: tf.Tensor) => {
      const layer = make({ goBackwards });
      layer.apply(new Input({ shape: [4, 5] }));
      const weights = layer.weightSpecs.map((s, k) => values(s.shape, 10 + k));
      const loss = (...w: tf.Tensor[]) => {
        const [xs, ...ws] = w;
        return tf.sum(tf.mul(layer.call([xs!], ws), values([2, 3], 99))) as tf.Scalar;
      };
      return tf.grads(loss)([input, ...weights]).map((g) => Array.from(g.dataSync()));
    };
    const backwards = grads(true, x);
    const forwardOnReversed = grads(false, tf.reverse(x, 1));
    // Input gradients are reversed too; the weights' gradients are the same.
    const reversedBack = Array.from(tf.reverse(tf.tensor(backwards[0]!, [2, 4, 5]), 1).dataSync());
    const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5);
    assert.ok(close(reversedBack, forwardOnReversed[0]!), "input gradient");
    backwards.slice(1).forEach((g, k) =>
      assert.ok(close(g, forwardOnReversed[k + 1]!), `weight ${k} gradient`)
    );
  });
}
