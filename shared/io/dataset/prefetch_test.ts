import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { DatasetError } from "../dataset_error.ts";
import { encodeNpy } from "../npy.ts";
import { fromArrays, fromNpz } from "./dataset.ts";
import { PrefetchingReader } from "./prefetch.ts";

/** Two shards of 6 and 4 rows of 3 float32 values (row r holds r, r + 0.25, r + 0.5) and labels r. */
async function shards(dir: string): Promise<string> {
  const write = async (name: string, first: number, rows: number) => {
    const x = new Float32Array(rows * 3);
    for (let r = 0; r < rows; r++) x.set([first + r, first + r + 0.25, first + r + 0.5], r * 3);
    const y = Uint8Array.from({ length: rows }, (_, r) => first + r);
    await Deno.writeFile(
      join(dir, name),
      zipSync({
        "x.npy": [encodeNpy({ data: x, shape: [rows, 3] }), { level: 0 }],
        "y.npy": [encodeNpy({ data: y, shape: [rows] }), { level: 0 }],
      }),
    );
  };
  await write("part-0.npz", 0, 6);
  await write("part-1.npz", 6, 4);
  return join(dir, "part-*.npz");
}

async function withShards(fn: (pattern: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-prefetch-test-" });
  try {
    await fn(await shards(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("rows read ahead in the thread equal the rows read at once, batch after batch", async () => {
  await withShards(async (pattern) => {
    const ds = await fromNpz(pattern, { x: "x", y: "y" });
    using reader = new PrefetchingReader(ds.spec!);
    const batches = [[9, 0, 5], [6, 1], [2, 8, 3, 7], [4]].map((b) => Int32Array.from(b));
    for (let b = 0; b < batches.length; b++) {
      const rows = reader.gather(batches[b]!);
      if (b + 1 < batches.length) reader.prefetch(batches[b + 1]!);
      assert.ok(reader.pending <= reader.depth, "no more than depth batches are read ahead");
      assert.deepEqual(await rows, ds.gather(batches[b]!));
    }
    assert.deepEqual(reader.served, { ahead: 3, now: 1 });
    reader.prefetchRange(4, 8);
    assert.deepEqual(await reader.range(4, 8), ds.range(4, 8));
    assert.deepEqual(reader.served, { ahead: 4, now: 1 });
  });
});

Deno.test("a wrong guess costs one read at once, and stale reads ahead are dropped within the depth", async () => {
  await withShards(async (pattern) => {
    const ds = (await fromNpz(pattern, { x: "x", y: "y" })).prefetch(2);
    using reader = new PrefetchingReader(ds.spec!);
    assert.equal(reader.depth, 2);
    reader.prefetch([0, 1]);
    reader.prefetch([2, 3]);
    reader.prefetch([4, 5]); // drops [0, 1]: at most two batches are held
    assert.equal(reader.pending, 2);
    assert.deepEqual(await reader.gather([7, 8]), ds.gather([7, 8]), "a batch not read ahead is read now");
    assert.deepEqual(await reader.gather([4, 5]), ds.gather([4, 5]));
    assert.equal(reader.pending, 0, "taking [4, 5] drops [2, 3], asked before it");
    assert.deepEqual(await reader.gather([2, 3]), ds.gather([2, 3]));
    assert.deepEqual(reader.served, { ahead: 1, now: 2 });
  });
});

Deno.test("a file truncated after opening fails the read ahead with the file named, when its rows are taken", async () => {
  await withShards(async (pattern, dir) => {
    const ds = await fromNpz(pattern, { x: "x", y: "y" });
    using reader = new PrefetchingReader(ds.spec!);
    const path = join(dir, "part-1.npz");
    const whole = await Deno.readFile(path);
    await Deno.writeFile(path, whole.subarray(0, 200));
    reader.prefetch([8, 9]);
    await assert.rejects(
      reader.gather([8, 9]),
      (e: Error) => e instanceof DatasetError && e.message.includes(path) && /truncated/.test(e.message),
    );
  });
});

Deno.test("prefetch takes 0, 1 or 2 batches; rows in memory read nothing ahead", () => {
  const ds = fromArrays({ data: new Float32Array(4), shape: [4, 1] });
  assert.equal(ds.prefetchDepth, 0);
  assert.equal(ds.prefetch(2).prefetchDepth, 0);
  assert.throws(() => ds.prefetch(3), /Cannot prefetch 3 batches .* must be 0, 1 or 2/);
  assert.throws(() => ds.prefetch(-1), RangeError);
});

Deno.test("prefetch(0) reads every batch at once and starts no thread", async () => {
  await withShards(async (pattern) => {
    const ds = (await fromNpz(pattern, { x: "x", y: "y" })).prefetch(0);
    assert.equal(ds.prefetchDepth, 0);
    const reader = new PrefetchingReader(ds.spec!);
    reader.prefetch([1, 2]);
    assert.equal(reader.pending, 0);
    assert.deepEqual(await reader.gather([1, 2]), ds.gather([1, 2]));
    assert.deepEqual(reader.served, { ahead: 0, now: 1 });
  });
});
