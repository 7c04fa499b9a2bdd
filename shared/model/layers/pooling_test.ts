import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";

const X = [
  [1, 2, 3, 4],
  [5, 6, 7, 8],
  [9, 10, 11, 12],
  [13, 14, 15, 16],
];

function image(rows: number[][]): tf.Tensor4D {
  return tf.tensor4d(rows.flat(), [1, rows.length, rows[0]!.length, 1]);
}

Deno.test("MaxPooling2D takes the maximum of each 2x2 window by default", () => {
  const p = new layers.MaxPooling2D();
  assert.deepEqual(p.apply(new Input({ shape: [4, 4, 1] })).shape, [2, 2, 1]);
  const y = p.call([image(X)]);
  assert.deepEqual(y.shape, [1, 2, 2, 1]);
  assert.deepEqual(Array.from(y.dataSync()), [6, 8, 14, 16]);
});

Deno.test("MaxPooling2D with stride 1 overlaps windows; 'same' padding keeps ceil(size/stride)", () => {
  const p = new layers.MaxPooling2D({ poolSize: 2, strides: 1 });
  assert.deepEqual(p.apply(new Input({ shape: [4, 4, 1] })).shape, [3, 3, 1]);
  assert.deepEqual(Array.from(p.call([image(X)]).dataSync()), [6, 7, 8, 10, 11, 12, 14, 15, 16]);
  const same = new layers.MaxPooling2D({ padding: "same" });
  assert.deepEqual(same.apply(new Input({ shape: [5, 5, 2] })).shape, [3, 3, 2]);
  const y = same.call([tf.ones([1, 5, 5, 2])]);
  assert.deepEqual(y.shape, [1, 3, 3, 2]);
});

Deno.test("MaxPooling2D rejects inputs that are not images, showing the shape", () => {
  assert.throws(
    () => new layers.MaxPooling2D({ name: "pool" }).apply(new Input({ shape: [784] })),
    /layer "pool" is incompatible with the layer: expected ndim=4, found ndim=2. Full shape received: \[null,784\]/,
  );
});
