import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { DatasetError } from "../dataset_error.ts";
import { encodeNpy } from "../npy.ts";
import { fromArrays, fromCsv, fromGenerator, fromNpz, openSpec } from "./dataset.ts";

const FIXTURES = new URL("../../../tests/fixtures/datasets/", import.meta.url).pathname;

/** Writes an npz of `arrays` (stored, like numpy.savez) and returns its path. */
async function writeNpz(
  dir: string,
  name: string,
  arrays: Record<string, { data: Float32Array | Uint8Array | Float64Array; shape: number[] }>,
): Promise<string> {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [k, a] of Object.entries(arrays)) files[`${k}.npy`] = [encodeNpy(a), { level: 0 }];
  const path = join(dir, name);
  await Deno.writeFile(path, zipSync(files));
  return path;
}

Deno.test("fromNpz reads numpy.savez shards by row across shards, converting to float32", async () => {
  const ds = await fromNpz(join(FIXTURES, "numpy-*.npz"), { x: "x", y: "y" });
  assert.equal(ds.length, 9);
  assert.deepEqual(ds.shardRows, [5, 4]);
  assert.deepEqual(ds.element, { inputs: [[3]], y: [] });
  const rows = ds.gather([8, 0, 5, 4]);
  assert.deepEqual(
    [...rows.inputs[0]!.data],
    [
      109,
      110,
      111,
      0,
      0.1,
      0.2,
      100,
      101,
      102,
      1.2,
      1.3,
      1.4,
    ].map(Math.fround),
  );
  assert.deepEqual(rows.inputs[0]!.shape, [4, 3]);
  assert.deepEqual([...rows.y!.data], [8, 0, 5, 4]);
  const range = ds.range(3, 7);
  assert.deepEqual([...range.y!.data], [3, 4, 5, 6]);
  assert.deepEqual([...range.inputs[0]!.data.subarray(6, 9)], [100, 101, 102]);
  assert.throws(() => ds.gather([9]), RangeError);
});

Deno.test("a spec opens the same rows in another process, and notices a changed shard", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeNpz(dir, "a.npz", {
      x: { data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] },
      y: { data: new Uint8Array([0, 1]), shape: [2] },
    });
    const ds = await fromNpz(path, { x: "x", y: "y" });
    const spec = JSON.parse(JSON.stringify(ds.spec));
    assert.deepEqual(openSpec(spec).gather([1]).inputs[0]!.data, new Float32Array([3, 4]));
    await writeNpz(dir, "a.npz", {
      x: { data: new Float32Array([1, 2]), shape: [1, 2] },
      y: { data: new Uint8Array([0]), shape: [1] },
    });
    assert.throws(
      () => openSpec(spec),
      (e: Error) => e instanceof DatasetError && /has 1 rows here but 2/.test(e.message),
    );
    spec.files[0].path = join(dir, "gone.npz");
    assert.throws(
      () => openSpec(spec),
      (e: Error) =>
        e.message.includes(join(dir, "gone.npz")) && e.message.includes(`host ${Deno.hostname()}`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fromNpz rejects an empty glob, a missing key, a compressed or truncated shard, mixed dtypes and shapes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      fromNpz(join(dir, "train-*.npz"), { x: "x" }),
      /no file in .* matches train-\*\.npz/,
    );
    await assert.rejects(
      fromNpz(join(FIXTURES, "numpy-0.npz"), { x: "images", y: "y" }),
      /has no such array: it holds \[x, y\]/,
    );
    await assert.rejects(
      fromNpz(join(FIXTURES, "compressed.npz"), { x: "x" }),
      /numpy\.savez instead of numpy\.savez_compressed/,
    );
    const whole = await Deno.readFile(join(FIXTURES, "numpy-0.npz"));
    await Deno.writeFile(join(dir, "cut.npz"), whole.subarray(0, whole.length - 30));
    await assert.rejects(
      fromNpz(join(dir, "cut.npz"), { x: "x" }),
      (e: Error) => e instanceof DatasetError && /cut\.npz/.test(e.message),
    );
    const a = await writeNpz(dir, "s-0.npz", { x: { data: new Float32Array(4), shape: [2, 2] } });
    await writeNpz(dir, "s-1.npz", { x: { data: new Float64Array(4), shape: [2, 2] } });
    await assert.rejects(
      fromNpz(join(dir, "s-*.npz"), { x: "x" }),
      /same dtype and row shape: .*<f4 rows of \[2\], .*<f8 rows of \[2\]/,
    );
    await writeNpz(dir, "s-1.npz", { x: { data: new Float32Array(3), shape: [1, 3] } });
    await assert.rejects(fromNpz(join(dir, "s-*.npz"), { x: "x" }), /<f4 rows of \[2\], .*<f4 rows of \[3\]/);
    await writeNpz(dir, "s-1.npz", {
      x: { data: new Float32Array(4), shape: [2, 2] },
      y: { data: new Float32Array(3), shape: [3] },
    });
    await assert.rejects(fromNpz([a, join(dir, "s-1.npz")], { x: "x", y: "y" }), /s-0\.npz.*no such array/);
    await assert.rejects(
      fromNpz(join(dir, "s-1.npz"), { x: "x", y: "y" }),
      /same number of rows: "x" has 2, "y" has 3/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fromCsv reads chosen columns per input lazily, across files, with quotes and CRLF", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "p-0.csv"), 'a,b,label,c\r\n1,2,0,3\r\n"4",5,1,6\r\n\r\n');
    await Deno.writeTextFile(join(dir, "p-1.csv"), "c,label,b,a\n9,1,8,7\n");
    const ds = await fromCsv(join(dir, "p-*.csv"), { x: [["a", "b"], ["c"]], y: "label" });
    assert.equal(ds.length, 3);
    assert.deepEqual(ds.element, { inputs: [[2], [1]], y: [] });
    const rows = ds.gather([2, 0]);
    assert.deepEqual([...rows.inputs[0]!.data], [7, 8, 1, 2]);
    assert.deepEqual([...rows.inputs[1]!.data], [9, 3]);
    assert.deepEqual([...rows.y!.data], [1, 0]);
    assert.deepEqual([...ds.range(0, 3).inputs[0]!.data], [1, 2, 4, 5, 7, 8]);
    assert.deepEqual([...openSpec(ds.spec!).range(1, 2).y!.data], [1]);
    await assert.rejects(
      fromCsv(join(dir, "p-*.csv"), { x: ["a", "d"] }),
      /no such column: it has \[a, b, label, c\]/,
    );
    await Deno.writeTextFile(join(dir, "bad.csv"), "a,b\n1,x\n");
    const bad = await fromCsv(join(dir, "bad.csv"), { x: ["a", "b"] });
    assert.throws(() => bad.gather([0]), /bad\.csv \(line 2\).*"x"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fromArrays checks row counts and reads by index and range", () => {
  const ds = fromArrays({ data: new Float32Array([1, 2, 3]), shape: [3, 1] }, {
    data: new Float32Array([4, 5, 6]),
    shape: [3],
  });
  assert.deepEqual([...ds.gather([2, 0]).y!.data], [6, 4]);
  assert.notEqual(ds.memory, null);
  assert.equal(ds.spec, null);
  assert.throws(
    () => fromArrays({ data: new Float32Array(3), shape: [3, 1] }, { data: new Float32Array(2), shape: [2] }),
    /array 0 has 3 rows but array 1 has 2/,
  );
});

async function* failing() {
  yield { inputs: [{ data: new Float32Array([1]), shape: [1, 1] }], y: null };
  yield { inputs: [{ data: new Float32Array([1]), shape: [1, 1] }], y: null };
  throw new Error("source went away");
}

Deno.test("fromGenerator spills batches to shards, reads them back, and removes them on close", async () => {
  async function* batches() {
    for (let b = 0; b < 5; b++) {
      yield {
        inputs: [{ data: new Float32Array([b, b]), shape: [1, 2] }],
        y: { data: new Float32Array([b]), shape: [1] },
      };
    }
  }
  const ds = await fromGenerator(batches(), { rowsPerShard: 2 });
  const dir = ds.spec!.files[0]!.path.replace(/\/[^/]*$/, "");
  assert.deepEqual(ds.shardRows, [2, 2, 1]);
  assert.deepEqual([...ds.range(0, 5).y!.data], [0, 1, 2, 3, 4]);
  await ds.close();
  assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);

  const out = await Deno.makeTempDir();
  try {
    await assert.rejects(fromGenerator(failing(), { dir: out, rowsPerShard: 1 }), /source went away/);
    assert.deepEqual([...Deno.readDirSync(out)], []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
