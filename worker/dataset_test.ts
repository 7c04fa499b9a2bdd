import assert from "node:assert/strict";
import { gatherBatch, rangeOf } from "./dataset.ts";
import { decodeDataset as datasetFromBody } from "../shared/io/protocol/mod.ts";

const body = Float32Array.from([0, 1, 2, 3, 4, 5, /* y */ 10, 11, 12]);

Deno.test("datasetFromBody splits inputs and labels by shape", () => {
  const ds = datasetFromBody(body, [[3, 2]], [3]);
  assert.equal(ds.length, 3);
  assert.deepEqual([...ds.inputs[0]!.data], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...ds.y!.data], [10, 11, 12]);
  assert.throws(() => datasetFromBody(body, [[3, 2]], null), /need 6 values: the body holds 9/);
  assert.throws(() => datasetFromBody(body, [[3, 2]], [2, 1, 1, 1]), /need \d+ values|rows/);
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
