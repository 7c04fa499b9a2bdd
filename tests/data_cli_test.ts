/**
 * `deno task train` on `.npz` shards as a user runs it: `deno task shards` writes real Fashion-MNIST
 * shards, `--train-data`/`--validation-data`/`--test-data` train from them in-process and with a worker
 * process that opens them itself, and bad shards or flags exit 2 with the file and the fix.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { encodeNpy } from "../shared/io/npy.ts";
import { userEnv } from "./support/user_env.ts";

const MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;
const SHARDS = new URL("../tools/write_shards.ts", import.meta.url).pathname;

async function run(script: string, args: string[], cwd?: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
    env: userEnv(),
    clearEnv: true,
    ...(cwd ? { cwd } : {}),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Fashion-MNIST's first 700 training rows (100 held out) and 200 test rows, 250 rows a shard. */
async function withShards(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-data-cli-test-" });
  try {
    const args = ["--rows-per-shard", "250", "--train-rows", "700", "--validation-rows", "100"];
    const r = await run(SHARDS, ["--out", "fm", ...args, "--test-rows", "200"], dir);
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      /Wrote 3 training shards \(600 rows\), 1 validation shard \(100 rows\) and 1 test shard/,
    );
    const names = [...Deno.readDirSync(join(dir, "fm"))].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "test-000.npz",
      "train-000.npz",
      "train-001.npz",
      "train-002.npz",
      "val-000.npz",
    ]);
    const again = await run(SHARDS, ["--out", "fm", ...args], dir);
    assert.equal(again.code, 2);
    assert.match(again.out, /already holds 5 .* Pass --force to remove them first/);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const FLAGS = [
  "--train-data",
  "fm/train-*.npz",
  "--validation-data",
  "fm/val-*.npz",
  "--test-data",
  "fm/test-*.npz",
  "--epochs",
  "1",
  "--verbose",
  "0",
];

Deno.test("deno task train trains from shards in-process and with a worker that opens them", async () => {
  await withShards(async (dir) => {
    for (const [workers, prefetch] of [["0", "1"], ["1", "2"]]) {
      const args = [
        ...FLAGS,
        "--workers",
        workers,
        "--prefetch",
        prefetch,
        "--summary",
        `run-${workers}.json`,
      ];
      const r = await run(MAIN, args, dir);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /--train-data \/.*\/fm\/train-\*\.npz: 600 rows in 3 shards, "x" rows of \[784\]/);
      assert.match(r.out, /--validation-data \/.*\/fm\/val-\*\.npz: 100 rows in 1 shard,/);
      const summary = JSON.parse(await Deno.readTextFile(join(dir, `run-${workers}.json`)));
      assert.equal(summary.samples_processed, 600);
      assert.equal(summary.workers, Number(workers));
      assert.ok(summary.history.val_loss.length === 1, "validation shards were evaluated");
      assert.ok(summary.test.accuracy > 0.3, `test accuracy ${summary.test.accuracy} after one epoch`);
    }
  });
});

/** Writes an npz (stored, as numpy.savez) of `arrays` at `path`. */
async function writeNpz(
  path: string,
  arrays: Record<string, { data: Float32Array | Uint8Array; shape: number[] }>,
) {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [k, a] of Object.entries(arrays)) files[`${k}.npy`] = [encodeNpy(a), { level: 0 }];
  await Deno.writeFile(path, zipSync(files));
}

Deno.test("bad shards and data flags exit 2 naming the file or the flag and the fix", async (t) => {
  await withShards(async (dir) => {
    const fm = join(dir, "fm");
    const cases: [string, () => Promise<void>, string[], RegExp][] = [
      [
        "an empty glob",
        async () => {},
        ["--train-data", "fm/training-*.npz"],
        /no file in .*fm matches training-\*\.npz: the directory holds 5 files .* Check the pattern/,
      ],
      [
        "a missing key",
        async () => {},
        ["--train-data", "fm/train-*.npz", "--x-key", "images"],
        /no such array: it holds \[x, y\].* Name the arrays with --x-key and --y-key/,
      ],
      [
        "a shard of another row shape",
        () =>
          writeNpz(join(fm, "train-003.npz"), {
            x: { data: new Float32Array(2 * 28), shape: [2, 28] },
            y: { data: new Uint8Array(2), shape: [2] },
          }),
        ["--train-data", "fm/train-*.npz"],
        /train-003\.npz with .*train-000\.npz as every shard's "x" must have the same dtype and row shape/,
      ],
      [
        "a truncated shard",
        async () => {
          const whole = await Deno.readFile(join(fm, "train-001.npz"));
          await Deno.writeFile(join(fm, "train-003.npz"), whole.subarray(0, whole.length >> 1));
        },
        ["--train-data", "fm/train-*.npz"],
        /train-003\.npz .*truncated.*write it again/,
      ],
      [
        "test shards of another row shape",
        () =>
          writeNpz(join(fm, "odd-test.npz"), {
            x: { data: new Float32Array(2 * 28), shape: [2, 28] },
            y: { data: new Uint8Array(2), shape: [2] },
          }),
        ["--train-data", "fm/train-00?.npz", "--test-data", "fm/odd-test.npz"],
        /odd-test\.npz \(--test-data\) with .* rows have shape \[28\] where the training shards' have \[784\]/,
      ],
      [
        "one-hot labels",
        () =>
          writeNpz(join(fm, "onehot.npz"), {
            x: { data: new Float32Array(2 * 784), shape: [2, 784] },
            y: { data: new Uint8Array(20), shape: [2, 10] },
          }),
        ["--train-data", "fm/onehot.npz"],
        /"y" must hold one class id per row .* Save the labels as integers 0-9, not one-hot/,
      ],
      [
        "a validation split of files",
        async () => {},
        ["--train-data", "fm/train-*.npz", "--validation-split", "0.2"],
        /--validation-split applies to the built-in data only.* pass --validation-data GLOB instead/,
      ],
      [
        "a prefetch of 3 batches",
        async () => {},
        ["--train-data", "fm/train-*.npz", "--prefetch", "3"],
        /--prefetch must be 0, 1 or 2 \(batches held in memory\): current value is 3/,
      ],
      [
        "test data without training data",
        async () => {},
        ["--test-data", "fm/test-*.npz"],
        /--test-data needs trainData \(--train-data GLOB\)/,
      ],
    ];
    for (const [name, prepare, args, expected] of cases) {
      await t.step(name, async () => {
        await prepare();
        try {
          const r = await run(MAIN, [...args, "--epochs", "1"], dir);
          assert.equal(r.code, 2, r.out);
          assert.match(r.out, expected);
          assert.doesNotMatch(r.out, /^\s+at /m, "no stack trace");
        } finally {
          await Deno.remove(join(fm, "train-003.npz")).catch(() => {});
        }
      });
    }
  });
});
