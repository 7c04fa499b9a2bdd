import assert from "node:assert/strict";
import { weightedSum } from "../model/vector.ts";
import {
  addTerm,
  chunkCount,
  firstTerm,
  receivedShard,
  RING_CHUNK_FLOATS,
  sentShard,
  shardBounds,
} from "./ring.ts";

/** Runs the ring's schedule over in-memory "links": what each rank holds at the end. */
function simulate(grads: Float32Array[], weights: number[], chunkFloats: number): Float32Array[] {
  const n = grads.length, length = grads[0]!.length;
  // inbox[k]: chunks rank k received, in order.
  const inbox: Float32Array[][] = grads.map(() => []);
  const shards = grads.map((_, k) =>
    new Float32Array(shardBounds(length, n, k)[1] - shardBounds(length, n, k)[0])
  );
  if (n === 1) return [firstTerm(grads[0]!, weights[0]!)];
  const chunksOf = (shard: number) => {
    const [a, b] = shardBounds(length, n, shard);
    return Array.from({ length: chunkCount(b - a, chunkFloats) }, (_, j) => {
      const start = a + j * chunkFloats;
      return [start, Math.min(b, start + chunkFloats)] as const;
    });
  };
  for (let k = 0; k < n; k++) {
    for (const [a, b] of chunksOf(sentShard(k, n, 0))) {
      inbox[(k + 1) % n]!.push(firstTerm(grads[k]!.subarray(a, b), weights[k]!));
    }
  }
  for (let round = 0; round < n - 1; round++) {
    const next: Float32Array[][] = grads.map(() => []);
    for (let k = 0; k < n; k++) {
      const shard = receivedShard(k, n, round);
      const [start] = shardBounds(length, n, shard);
      for (const [a, b] of chunksOf(shard)) {
        const partial = inbox[k]!.shift()!;
        addTerm(partial, grads[k]!.subarray(a, b), weights[k]!);
        if (round < n - 2) next[(k + 1) % n]!.push(partial);
        else shards[k]!.set(partial, a - start);
      }
      assert.equal(inbox[k]!.length, 0, `rank ${k} round ${round}: chunks left over`);
    }
    if (round < n - 2) { for (let k = 0; k < n; k++) inbox[k] = next[k]!; }
  }
  return shards;
}

function random(length: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length },
    () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1,
  );
}

Deno.test("shards cover the vector once, in order", () => {
  for (const [length, n] of [[10, 3], [7, 8], [1000, 16], [0, 2]] as const) {
    let end = 0;
    for (let k = 0; k < n; k++) {
      const [a, b] = shardBounds(length, n, k);
      assert.equal(a, end);
      assert.ok(b >= a);
      end = b;
    }
    assert.equal(end, length);
  }
});

Deno.test("each rank ends holding its own shard, after N - 1 rounds", () => {
  for (const n of [2, 3, 5, 8]) {
    for (let k = 0; k < n; k++) {
      assert.equal(receivedShard(k, n, n - 2), k);
      for (let r = 1; r < n - 1; r++) assert.equal(sentShard(k, n, r), receivedShard(k, n, r - 1));
      for (let r = 0; r < n - 1; r++) assert.equal(sentShard(k, n, r), receivedShard((k + 1) % n, n, r));
    }
  }
});

Deno.test("the ring's reduced shards equal the weighted sum of the star within float rounding", () => {
  for (const n of [1, 2, 3, 5, 8]) {
    for (const chunk of [RING_CHUNK_FLOATS, 7]) {
      const length = 1001;
      const grads = Array.from({ length: n }, (_, k) => random(length, 17 + k));
      const counts = Array.from({ length: n }, (_, k) => 3 + k);
      const total = counts.reduce((a, b) => a + b, 0);
      const weights = counts.map((c) => c / total);
      const star = new Float32Array(length);
      weightedSum(star, grads, weights);
      const shards = simulate(grads, weights, chunk);
      const ring = new Float32Array(length);
      shards.forEach((s, k) => ring.set(s, shardBounds(length, n, k)[0]));
      let diff = 0;
      for (let i = 0; i < length; i++) diff = Math.max(diff, Math.abs(ring[i]! - star[i]!));
      assert.ok(diff <= 1e-6, `${n} ranks, chunks of ${chunk}: max difference ${diff}`);
      // The same N gives the same bits: the order of the terms is fixed.
      const again = simulate(grads, weights, chunk);
      again.forEach((s, k) => assert.deepEqual(s, shards[k]));
    }
  }
});

Deno.test("a term of another length than the chunk is refused with both lengths", () => {
  assert.throws(
    () => addTerm(new Float32Array(3), new Float32Array(4), 1),
    /Cannot add a term of 4 values to a ring chunk of 3 values/,
  );
});

Deno.test("a first term written to a reused buffer has the bits of a new array's, whatever the buffer held", () => {
  const own = Float32Array.from([1.1, -0, 0, -3.3e-8, 7e30, -2.5]);
  const fresh = firstTerm(own, 0.3);
  const reused = Float32Array.from([9, 9, -0, Number.NaN, 1, 2, 3, 4]);
  const out = firstTerm(own, 0.3, reused.subarray(0, own.length));
  assert.deepEqual(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), new Uint8Array(fresh.buffer));
  assert.equal(Object.is(out[1], 0), true, "0 + 0.3 · -0 is +0, as in a new array");
  assert.throws(() => firstTerm(own, 0.3, reused), /pass out\.subarray\(0, 6\)/);
});
