/**
 * Memory stays bounded on data larger than memory: npz shards, each larger than the budget, train one
 * epoch on 2 real workers that read their own rows. Coordinator and workers stay within 700 MiB of
 * peak RSS, every row is trained once, and the weights equal a 1-worker run's.
 *
 * The data's size is `SHOAL_BIG_DATASET_MB` (default 1,536 MiB in two shards; shards hold at most
 * 768 MiB each). Run it with `SHOAL_BIG_DATASET_MB=2048` for the 2 GB check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Zip, ZipPassThrough } from "npm:fflate@0.8.3";

const BUDGET = 700 * 1024 * 1024;
/** Floats per row: 64 KiB rows keep the step count low for the bytes. */
const WIDTH = 16384;
const TOTAL_MB = Number(Deno.env.get("SHOAL_BIG_DATASET_MB") ?? 1536);
const SHARD_MB = 768;
/** Values of each row that differ from row to row. */
const VARYING = 256;

/** The `.npy` (1.0) header of an array of `rows` rows of `row`, without the payload. */
function npyHeader(rows: number, row: number[], typed: Float32Array | Uint8Array): Uint8Array {
  const descr = typed instanceof Float32Array ? "<f4" : "|u1";
  const dims = row.length === 0 ? `${rows},` : [rows, ...row].join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

/** Streams one shard of `rows` rows starting at global row `first` into an npz (stored members). */
async function writeShard(path: string, first: number, rows: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const pending: Promise<unknown>[] = [];
  let failure: Error | null = null;
  const zip = new Zip((error, chunk) => {
    if (error) failure = error;
    else pending.push(file.write(chunk.slice()));
  });
  const x = new ZipPassThrough("x.npy");
  zip.add(x);
  x.push(npyHeader(rows, [WIDTH], new Float32Array(0)));
  // A fixed pattern, with the first VARYING values of each row its own: cheap to write, and rows differ.
  const block = new Float32Array(256 * WIDTH).map((_, i) => Math.sin(i * 0.37) * 0.5);
  for (let r = 0; r < rows; r += 256) {
    const n = Math.min(256, rows - r);
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < VARYING; i++) {
        block[k * WIDTH + i] = Math.sin((first + r + k) * 7.1 + i * 0.37) * 0.5;
      }
    }
    x.push(new Uint8Array(block.buffer, 0, n * WIDTH * 4));
    // Write as we go: the file, not this process, holds the shard.
    await Promise.all(pending.splice(0));
  }
  x.push(new Uint8Array(0), true);
  const y = new ZipPassThrough("y.npy");
  zip.add(y);
  const labels = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) labels[r] = Math.sin((first + r) * 7.1) > 0 ? 1 : 0;
  y.push(npyHeader(rows, [], labels));
  y.push(labels, true);
  zip.end();
  // Writes are issued in order; one at a time keeps them in order.
  for (const p of pending) await p;
  file.close();
  if (failure) throw failure;
}

async function fitIn(dir: string, workers: number) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./support/big_dataset_fit.ts", import.meta.url).pathname,
      dir,
      String(workers),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0, `the ${workers}-worker run failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

Deno.test("one epoch over shards larger than the memory budget: bounded RSS, every row once, same weights", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-big-dataset-" });
  try {
    const rowsTotal = Math.floor((TOTAL_MB * 1024 * 1024) / (WIDTH * 4));
    const shards = Math.ceil(TOTAL_MB / SHARD_MB);
    for (let s = 0, first = 0; s < shards; s++) {
      const rows = Math.floor(rowsTotal / shards) + (s < rowsTotal % shards ? 1 : 0);
      await writeShard(join(dir, `train-${s}.npz`), first, rows);
      first += rows;
    }
    const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
    const two = await fitIn(dir, 2);
    const one = await fitIn(dir, 1);
    console.log(
      `${TOTAL_MB} MiB in ${shards} shards, ${two.rows} rows: 2 workers ${two.seconds.toFixed(1)} s, ` +
        `coordinator peak ${mib(two.coordinatorPeak)} MiB, workers ${
          two.workerPeaks.map(mib).join(", ")
        } MiB; ` +
        `1 worker ${one.seconds.toFixed(1)} s`,
    );
    assert.equal(two.workers, 2);
    assert.equal(two.samples, rowsTotal);
    assert.equal(one.samples, rowsTotal);
    assert.ok(two.coordinatorPeak <= BUDGET, `coordinator peak RSS ${mib(two.coordinatorPeak)} MiB > 700`);
    assert.equal(two.workerPeaks.length, 2, "both workers' memory was measured");
    for (const peak of two.workerPeaks) {
      assert.ok(peak > 0 && peak <= BUDGET, `worker peak RSS ${mib(peak)} MiB > 700`);
    }
    let diff = 0;
    two.params.forEach((v: number, i: number) => diff = Math.max(diff, Math.abs(v - one.params[i])));
    assert.ok(diff <= 1e-5, `2 workers differ from 1 by ${diff}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
