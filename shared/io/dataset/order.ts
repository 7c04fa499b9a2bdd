/**
 * The order rows are visited in one epoch, a pure function of (seed, epoch): a resumed run, and any
 * number of workers, visit the same rows in the same order.
 */
import { Rng } from "../../model/random.ts";

/** Rng stream of the epoch's global permutation (the one in-memory arrays use too). */
const PERMUTATION_STREAM = 0x100000;
/** Rng streams of a shuffle buffer's shard order and draws. */
const SHARD_STREAM = 0x200000;
const BUFFER_STREAM = 0x300000;

/** Rows in order 0..n-1. */
export function identityOrder(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** A uniform permutation of all `n` rows, whatever shard they are in. */
export function globalOrder(n: number, seed: number, epoch: number): Int32Array {
  return new Rng(seed, PERMUTATION_STREAM + epoch).permutation(n);
}

/**
 * The order of a windowed shuffle buffer (tf.data's `shuffle(buffer_size)`): shards in a shuffled
 * order, their rows streamed in file order through a buffer of `size` rows, each draw taking a
 * random row of the buffer. Reads stay within about `size` rows of the stream.
 *
 * @param shardRows rows of each shard, in shard order.
 */
export function bufferedOrder(
  shardRows: readonly number[],
  size: number,
  seed: number,
  epoch: number,
): Int32Array {
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`Cannot shuffle with a buffer of ${size} rows: the size must be a positive integer`);
  }
  const starts: number[] = [];
  let n = 0;
  for (const rows of shardRows) {
    starts.push(n);
    n += rows;
  }
  const shards = new Rng(seed, SHARD_STREAM + epoch).permutation(shardRows.length);
  const rng = new Rng(seed, BUFFER_STREAM + epoch);
  const out = new Int32Array(n);
  const buffer = new Int32Array(Math.min(size, n));
  let held = 0, o = 0;
  for (const s of shards) {
    for (let r = starts[s]!; r < starts[s]! + shardRows[s]!; r++) {
      if (held < buffer.length) {
        buffer[held++] = r;
        continue;
      }
      const j = Math.floor(rng.uniform() * held);
      out[o++] = buffer[j]!;
      buffer[j] = r;
    }
  }
  while (held > 0) {
    const j = Math.floor(rng.uniform() * held);
    out[o++] = buffer[j]!;
    buffer[j] = buffer[--held]!;
  }
  return out;
}
