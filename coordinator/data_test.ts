import assert from "node:assert/strict";
import { tf } from "../mod.ts";
import { gatherRows, rangeBatch, sampleShape, sliceRows, toDataset } from "./data.ts";

Deno.test("toDataset reads tensors, nested arrays and { data, shape } the same way", () => {
  const fromTensor = toDataset(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([0, 1, 2], "int32"));
  const fromArrays = toDataset([[1, 2], [3, 4], [5, 6]], [0, 1, 2]);
  const fromFlat = toDataset({ data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] }, [0, 1, 2]);
  for (const ds of [fromTensor, fromArrays, fromFlat]) {
    assert.equal(ds.length, 3);
    assert.deepEqual(ds.inputs.map((a) => [Array.from(a.data), a.shape]), [[[1, 2, 3, 4, 5, 6], [3, 2]]]);
    assert.ok(ds.y!.data instanceof Float32Array);
    assert.deepEqual(Array.from(ds.y!.data), [0, 1, 2]);
  }
  assert.equal(toDataset([[1], [2]], null).y, null);
});

Deno.test("toDataset copies tensor data so later changes to the tensor cannot leak in", () => {
  const t = tf.tensor2d([[1, 2]]);
  const ds = toDataset(t, [0]);
  t.dispose();
  assert.deepEqual(Array.from(ds.inputs[0]!.data), [1, 2]);
});

Deno.test("toDataset takes a list of inputs for multi-input models", () => {
  const ds = toDataset([tf.ones([4, 3]), tf.zeros([4, 2, 2])], tf.zeros([4]));
  assert.deepEqual(ds.inputs.map((a) => a.shape), [[4, 3], [4, 2, 2]]);
  assert.deepEqual(ds.inputs.map(sampleShape), [[3], [2, 2]]);
});

Deno.test("toDataset rejects mismatched sample counts and bad arrays with the numbers", () => {
  assert.throws(
    () => toDataset(tf.ones([5, 2]), tf.zeros([4])),
    /Data cardinality is ambiguous: x has 5 samples but y has 4/,
  );
  assert.throws(
    () => toDataset([tf.ones([5, 2]), tf.ones([3, 2])], tf.zeros([5])),
    /input 0 has 5 rows, input 1 has 3/,
  );
  assert.throws(
    () => toDataset({ data: new Float32Array(5), shape: [2, 3] }, null),
    /shape \[2,3\] needs 6 values: received 5/,
  );
  assert.throws(() => toDataset(tf.scalar(1), null), /Cannot use a scalar as x/);
});

Deno.test("sliceRows, rangeBatch and gatherRows pick rows of every array", () => {
  const ds = toDataset([[0, 1], [2, 3], [4, 5], [6, 7]], [10, 11, 12, 13]);
  const tail = sliceRows(ds, 1, 3);
  assert.equal(tail.length, 2);
  assert.deepEqual(Array.from(tail.inputs[0]!.data), [2, 3, 4, 5]);
  assert.deepEqual(tail.inputs[0]!.shape, [2, 2]);
  assert.deepEqual(Array.from(tail.y!.data), [11, 12]);
  // Slices are views on the same memory.
  assert.equal(tail.inputs[0]!.data.buffer, ds.inputs[0]!.data.buffer);
  const r = rangeBatch(ds, 3, 4);
  assert.deepEqual([Array.from(r.inputs[0]!.data), Array.from(r.y!.data)], [[6, 7], [13]]);
  const g = gatherRows(ds, Int32Array.from([3, 0, 3]));
  assert.deepEqual(Array.from(g.inputs[0]!.data), [6, 7, 0, 1, 6, 7]);
  assert.deepEqual(g.inputs[0]!.shape, [3, 2]);
  assert.deepEqual(Array.from(g.y!.data), [13, 10, 13]);
});
