import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";

Deno.test("Concatenate joins inputs on the last axis", () => {
  const c = new layers.Concatenate();
  assert.deepEqual(c.apply([new Input({ shape: [2] }), new Input({ shape: [3] })]).shape, [5]);
  const y = c.call([tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6, 7], [8, 9, 10]])]);
  assert.deepEqual(y.shape, [2, 5]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 5, 6, 7, 3, 4, 8, 9, 10]);
  assert.equal(c.getConfig().axis, -1);
});

Deno.test("Concatenate on axis 1 of rank-3 inputs stacks positions", () => {
  const c = new layers.Concatenate({ axis: 1 });
  assert.deepEqual(c.apply([new Input({ shape: [1, 2] }), new Input({ shape: [2, 2] })]).shape, [3, 2]);
  const y = c.call([tf.tensor3d([[[1, 2]]]), tf.tensor3d([[[3, 4], [5, 6]]])]);
  assert.deepEqual(y.shape, [1, 3, 2]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4, 5, 6]);
});

Deno.test("Concatenate rejects one input and shapes that differ off the axis, naming the shapes", () => {
  assert.throws(
    () => new layers.Concatenate().apply([new Input({ shape: [2] })]),
    /at least 2 inputs: received 1/,
  );
  assert.throws(
    () => new layers.Concatenate().apply([new Input({ shape: [2, 3] }), new Input({ shape: [4, 3] })]),
    /matching shapes except for the concatenation axis: received \[null,2,3\], \[null,4,3\]/,
  );
});
