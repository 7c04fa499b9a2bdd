/**
 * `deno task shards --out DIR`: writes Fashion-MNIST as `.npz` shards, as `numpy.savez` writes them
 * (arrays stored uncompressed): `DIR/train-000.npz`… and `DIR/test-000.npz`…, each with `x` (uint8
 * rows of 784 pixels, 0-255, as the dataset holds them: the chapter's model scales them) and `y`
 * (uint8 class ids). Then
 * `deno task train --train-data 'DIR/train-*.npz' --test-data 'DIR/test-*.npz'` trains from them.
 *
 * Each shard is written to a `.partial` file and renamed when complete, so a stopped run leaves no
 * half-written shard that a pattern would match. A folder that already holds shards is refused
 * (their count would mix with the new ones) unless `--force` removes them first.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { loadDataset } from "../shared/io/datasets.ts";
import { encodeNpy } from "../shared/io/npy.ts";
import { userPath } from "../shared/io/paths.ts";

const USAGE = `Usage: deno task shards --out DIR [--rows-per-shard N] [--validation-rows N]
                        [--train-rows N] [--test-rows N] [--force]

Writes Fashion-MNIST as npz shards: DIR/train-NNN.npz and DIR/test-NNN.npz (x: uint8 pixels
[n, 784], y: uint8 class ids), and with --validation-rows N the last N training rows as
DIR/val-NNN.npz instead. Relative paths are taken from the folder you run the command in.

  --out DIR              where to write the shards (created if missing)
  --rows-per-shard N     default 10000
  --validation-rows N    hold out the last N training rows as validation shards; default 0
  --train-rows N         take the first N of the 60000 training rows (quick tries); default all
  --test-rows N          take the first N of the 10000 test rows; default all
  --force                remove shards (train-*, val-*, test-*.npz) already in DIR first
`;

/** A bad flag or a folder that already holds shards: printed, exit 2. */
class UsageError extends Error {}

function count(value: string | undefined, flag: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(
      `--${flag} must be a whole number ≥ ${min}: current value is ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** Writes rows `first..end` of the images and labels as shards `prefix-NNN.npz`; returns their paths. */
async function writeSplit(
  dir: string,
  prefix: string,
  pixels: Uint8Array,
  labels: Uint8Array,
  first: number,
  end: number,
  rowsPerShard: number,
): Promise<string[]> {
  const written: string[] = [];
  for (let start = first, s = 0; start < end; start += rowsPerShard, s++) {
    const n = Math.min(rowsPerShard, end - start);
    const x = pixels.slice(start * 784, (start + n) * 784);
    const zip = zipSync({
      "x.npy": [encodeNpy({ data: x, shape: [n, 784] }), { level: 0 }],
      "y.npy": [encodeNpy({ data: labels.slice(start, start + n), shape: [n] }), { level: 0 }],
    });
    const path = join(dir, `${prefix}-${String(s).padStart(3, "0")}.npz`);
    await Deno.writeFile(`${path}.partial`, zip);
    await Deno.rename(`${path}.partial`, path);
    written.push(path);
  }
  return written;
}

function shards(n: number, kind: string): string {
  return `${n} ${kind} shard${n === 1 ? "" : "s"}`;
}

/** The shards (and leftover `.partial` files) a previous run wrote in `dir`. */
async function existingShards(dir: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^(train|val|test)-\d+\.npz(\.partial)?$/.test(e.name)) found.push(join(dir, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return found.sort();
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      "rows-per-shard": { type: "string" },
      "validation-rows": { type: "string" },
      "train-rows": { type: "string" },
      "test-rows": { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.out === undefined) {
    throw new UsageError("--out DIR is required: the folder to write the shards to");
  }
  const dir = userPath(values.out);
  const rowsPerShard = count(values["rows-per-shard"], "rows-per-shard", 10_000, 1);
  const validationRows = count(values["validation-rows"], "validation-rows", 0, 0);
  const old = await existingShards(dir);
  if (old.length > 0 && !values.force) {
    throw new UsageError(
      `Cannot write shards to ${dir} as it already holds ${old.length} (e.g. ${old[0]}): new shards would ` +
        "mix with them under one pattern. Pass --force to remove them first, or choose another --out",
    );
  }
  for (const path of old) await Deno.remove(path);
  await Deno.mkdir(dir, { recursive: true });
  const data = await loadDataset("fashion_mnist");
  const nTrain = Math.min(
    count(values["train-rows"], "train-rows", data.yTrain.length, 1),
    data.yTrain.length,
  );
  const nTest = Math.min(count(values["test-rows"], "test-rows", data.yTest.length, 1), data.yTest.length);
  if (validationRows >= nTrain) {
    throw new UsageError(
      `--validation-rows must be below the ${nTrain} training rows: current value is ${validationRows}`,
    );
  }
  const trainEnd = nTrain - validationRows;
  const train = await writeSplit(dir, "train", data.xTrain.data, data.yTrain, 0, trainEnd, rowsPerShard);
  const val = await writeSplit(dir, "val", data.xTrain.data, data.yTrain, trainEnd, nTrain, rowsPerShard);
  const test = await writeSplit(dir, "test", data.xTest.data, data.yTest, 0, nTest, rowsPerShard);
  console.log(
    `Wrote ${shards(train.length, "training")} (${trainEnd} rows)${
      val.length ? `, ${shards(val.length, "validation")} (${validationRows} rows)` : ""
    } and ${shards(test.length, "test")} (${nTest} rows) to ${dir}. Train from them with:\n` +
      `  deno task train --train-data '${join(dir, "train-*.npz")}'${
        val.length ? ` --validation-data '${join(dir, "val-*.npz")}'` : ""
      } --test-data '${join(dir, "test-*.npz")}'`,
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof TypeError && "code" in e)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    Deno.exit(2);
  }
}
