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
