import assert from "node:assert/strict";
import { gatherBatch, rangeOf } from "./dataset.ts";
import { decodeDataset as datasetFromBody } from "../shared/io/protocol/mod.ts";

const body = new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5, /* y */ 10, 11, 12]).buffer);

Deno.test("datasetFromBody splits inputs and labels by shape", () => {
  const ds = datasetFromBody(body, [[3, 2]], [3]);
  assert.equal(ds.length, 3);
  assert.deepEqual([...ds.inputs[0]!.data], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...ds.y!.data], [10, 11, 12]);
  assert.throws(() => datasetFromBody(body, [[3, 2]], null), /need 24 bytes: the body holds 36/);
  assert.throws(() => datasetFromBody(body, [[3, 2]], [2, 1, 1, 1]), /need \d+ bytes|rows/);
});

Deno.test("gatherBatch copies rows in index order and refuses rows out of range", async () => {
  const ds = datasetFromBody(body, [[3, 2]], [3]);
  const b = await gatherBatch(ds, Int32Array.from([2, 0]));
  assert.deepEqual([...b.inputs[0]!.data], [4, 5, 0, 1]);
  assert.deepEqual(b.inputs[0]!.shape, [2, 2]);
  assert.deepEqual([...b.y!.data], [12, 10]);
  await assert.rejects(gatherBatch(ds, Int32Array.from([3])), /row 3 as the dataset has 3 rows/);
});

Deno.test("rangeOf returns a range of rows", async () => {
  const ds = datasetFromBody(body, [[3, 2]], [3]);
  const b = await rangeOf(ds, 1, 3);
  assert.deepEqual([...b.inputs[0]!.data], [2, 3, 4, 5]);
  assert.deepEqual(b.inputs[0]!.shape, [2, 2]);
  assert.deepEqual([...b.y!.data], [11, 12]);
});

Deno.test("bytes stay bytes in a worker's dataset and become float32 rows batch by batch", async () => {
  // 3 rows of 3 bytes (9 bytes, padded to 12), then float32 labels.
  const bytes = new Uint8Array(12 + 12);
  bytes.set([0, 1, 2, 100, 101, 102, 253, 254, 255]);
  new Float32Array(bytes.buffer, 12, 3).set([7, 8, 9]);
  const ds = datasetFromBody(bytes, [[3, 3]], [3], ["uint8", "float32"]);
  assert.ok(ds.inputs[0]!.data instanceof Uint8Array);
  assert.equal(ds.inputs[0]!.data.buffer, bytes.buffer, "a view of the body, no copy");
  const gathered = await gatherBatch(ds, Int32Array.from([2, 0]));
  assert.ok(gathered.inputs[0]!.data instanceof Float32Array);
  assert.deepEqual([...gathered.inputs[0]!.data], [253, 254, 255, 0, 1, 2]);
  assert.deepEqual([...gathered.y!.data], [9, 7]);
  const range = await rangeOf(ds, 1, 3);
  assert.ok(range.inputs[0]!.data instanceof Float32Array);
  assert.deepEqual([...range.inputs[0]!.data], [100, 101, 102, 253, 254, 255]);
  assert.throws(() => datasetFromBody(bytes, [[3, 3]], [3]), /need 48 bytes: the body holds 24/);
  assert.throws(() => datasetFromBody(bytes, [[3, 3]], [3], ["uint8"]), /1 element types for its 2 arrays/);
});
