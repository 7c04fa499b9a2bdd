import assert from "node:assert/strict";
import { weightedSum } from "../model/vector.ts";
import {
  addTermInPlace,
  chunkCount,
  firstTermInPlace,
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
  if (n === 1) return [firstTermInPlace(grads[0]!.slice(), weights[0]!)];
  const chunksOf = (shard: number) => {
    const [a, b] = shardBounds(length, n, shard);
    return Array.from({ length: chunkCount(b - a, chunkFloats) }, (_, j) => {
      const start = a + j * chunkFloats;
      return [start, Math.min(b, start + chunkFloats)] as const;
    });
  };
  for (let k = 0; k < n; k++) {
    for (const [a, b] of chunksOf(sentShard(k, n, 0))) {
      inbox[(k + 1) % n]!.push(firstTermInPlace(grads[k]!.slice(a, b), weights[k]!));
    }
  }
  for (let round = 0; round < n - 1; round++) {
    const next: Float32Array[][] = grads.map(() => []);
    for (let k = 0; k < n; k++) {
      const shard = receivedShard(k, n, round);
      const [start] = shardBounds(length, n, shard);
      for (const [a, b] of chunksOf(shard)) {
        const sum = grads[k]!.slice(a, b);
        addTermInPlace(sum, inbox[k]!.shift()!, weights[k]!);
        if (round < n - 2) next[(k + 1) % n]!.push(sum);
        else shards[k]!.set(sum, a - start);
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
    () => addTermInPlace(new Float32Array(4), new Float32Array(3), 1),
    /Cannot add a term of 4 values to a ring chunk of 3 values/,
  );
});

Deno.test("terms in place have the bits of their float expressions, -0 becoming +0", () => {
  const own = Float32Array.from([1.1, -0, 0, -3.3e-8, 7e30, -2.5]);
  const first = firstTermInPlace(own.slice(), 0.3);
  own.forEach((x, i) => assert.ok(Object.is(first[i], Math.fround(0 + 0.3 * x)), `first term ${i}`));
  assert.equal(Object.is(first[1], 0), true, "0 + 0.3 · -0 is +0");
  const partial = Float32Array.from([2, 0, -0, 1e-8, -7e30, 2.5]);
  const sum = own.slice();
  addTermInPlace(sum, partial, 0.3);
  own.forEach((x, i) => assert.ok(Object.is(sum[i], Math.fround(partial[i]! + 0.3 * x)), `sum ${i}`));
});
