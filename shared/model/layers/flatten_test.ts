import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";

Deno.test("Flatten turns each sample into one axis in row-major order", () => {
  const f = new layers.Flatten();
  assert.deepEqual(f.apply(new Input({ shape: [2, 3, 1] })).shape, [6]);
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 3, 1]);
  const y = f.call([x]);
  assert.deepEqual(y.shape, [2, 6]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(f.countParams(), 0);
  assert.equal(f.getConfig().data_format, "channels_last");
});
