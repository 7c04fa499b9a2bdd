import assert from "node:assert/strict";
import { Rng } from "../../model/random.ts";
import { bufferedOrder, globalOrder } from "./order.ts";

function isPermutation(order: Int32Array, n: number): boolean {
  const seen = new Uint8Array(n);
  for (const r of order) seen[r] = (seen[r] ?? 0) + 1;
  return order.length === n && seen.every((c) => c === 1);
}

Deno.test("the global order is the permutation in-memory arrays use, a function of (seed, epoch)", () => {
  assert.deepEqual(globalOrder(100, 7, 2), new Rng(7, 0x100000 + 2).permutation(100));
  assert.deepEqual(globalOrder(100, 7, 2), globalOrder(100, 7, 2));
  assert.notDeepEqual(globalOrder(100, 7, 2), globalOrder(100, 7, 3));
});

Deno.test("a shuffle buffer visits every row once, stays within its window, and repeats per (seed, epoch)", () => {
  const shards = [40, 25, 35];
  const order = bufferedOrder(shards, 8, 3, 1);
  assert.ok(isPermutation(order, 100));
  assert.deepEqual(order, bufferedOrder(shards, 8, 3, 1));
  assert.notDeepEqual(order, bufferedOrder(shards, 8, 3, 2));
  // Rows come shard by shard: the first 8 draws hold rows of one shard only (the buffer's window).
  const shardOf = (r: number) => (r < 40 ? 0 : r < 65 ? 1 : 2);
  const first = new Set([...order.subarray(0, 8)].map(shardOf));
  assert.equal(first.size, 1);
  assert.ok(isPermutation(bufferedOrder(shards, 1000, 3, 1), 100));
  assert.throws(() => bufferedOrder(shards, 0, 3, 1), /positive integer/);
});
