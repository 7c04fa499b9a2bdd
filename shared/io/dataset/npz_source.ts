/**
 * Rows of sharded `.npz` files, read by offset: each shard's zip directory and array headers are read
 * once, then every read is one positioned read per row (or per run of rows) and array. Members must be
 * stored uncompressed (`numpy.savez`): a deflated member (`numpy.savez_compressed`) cannot be read by
 * offset, and is rejected with the fix.
 */
import { DatasetError } from "../dataset_error.ts";
import { readNpyHeader } from "../npy.ts";
import { readAt, withFile } from "./file_read.ts";
import {
  checkIndices,
  checkRange,
  type ElementSpec,
  type RowArray,
  type Rows,
  type RowSource,
} from "./rows.ts";
import { readZipIndex } from "./zip_index.ts";

/** Which arrays of each shard feed the model: one key per input, and the labels' key. */
export interface NpzKeys {
  inputs: string[];
  y: string | null;
}

/** One array of one shard, located in its file. */
interface Column {
  /** Offset of the first payload byte in the file. */
  offset: number;
  descr: string;
  itemSize: number;
  /** Values per row. */
  size: number;
}

interface Shard {
  path: string;
  rows: number;
  /** First global row of this shard. */
  start: number;
  /** One per input, then the labels. */
  columns: Column[];
}

/** What a worker needs to open the same shards: paths and the row count each had. */
export interface NpzShardSpec {
  path: string;
  rows: number;
}

/** Reads `count` values of type `descr` from `raw` into `out` at `at`, converting to float32. */
export function toFloat32(raw: Uint8Array, descr: string, out: Float32Array, at: number): void {
  const b = raw.buffer as ArrayBuffer, o = raw.byteOffset;
  switch (descr) {
    case "<f4":
      out.set(new Float32Array(b, o, raw.byteLength / 4), at);
      return;
    case "<f8":
      out.set(new Float64Array(b, o, raw.byteLength / 8), at);
      return;
    case "<i4":
      out.set(new Int32Array(b, o, raw.byteLength / 4), at);
      return;
    case "|i1":
      out.set(new Int8Array(b, o, raw.byteLength), at);
      return;
    case "|u1":
    case "|b1":
      out.set(raw, at);
      return;
    case "<i8": {
      const v = new BigInt64Array(b, o, raw.byteLength / 8);
      for (let i = 0; i < v.length; i++) out[at + i] = Number(v[i]);
      return;
    }
    default:
      throw new RangeError(`Cannot convert dtype ${descr} to float32`);
  }
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Reads one shard's directory and the headers of the arrays `keys` names. */
function openShard(
  path: string,
  keys: string[],
  start: number,
): { shard: Shard; shapes: number[][]; descrs: string[] } {
  return withFile(path, (file) => {
    const size = file.statSync().size;
    const members = readZipIndex(file, path, size);
    const columns: Column[] = [];
    const shapes: number[][] = [];
    const descrs: string[] = [];
    let rows = -1;
    for (const key of keys) {
      const member = members.find((m) => m.name === `${key}.npy` || m.name === key);
      const source = `${path}:${key}.npy`;
      if (!member) {
        const found = members.map((m) => m.name.replace(/\.npy$/, ""));
        throw new DatasetError(
          path,
          `Cannot read array "${key}" from ${path} as the shard has no such array: it holds [${
            found.join(", ")
          }]. Pass the key the shards were saved with (numpy.savez(path, ${key}=...)).`,
        );
      }
      if (member.method !== 0) {
        throw new DatasetError(
          path,
          `Cannot read rows of ${source} by offset as it is compressed (zip method ${member.method}); ` +
            "only arrays stored uncompressed can be read without loading the whole shard. Save the shards " +
            "with numpy.savez instead of numpy.savez_compressed.",
        );
      }
      const head = readAt(file, path, member.dataOffset, Math.min(member.size, 4096));
      const header = readNpyHeader(head, source);
      if (header.shape.length === 0) {
        throw new DatasetError(
          path,
          `Cannot use ${source} as a dataset column as it must have rows (shape [n, ...]): found a scalar.`,
        );
      }
      const [n, ...row] = header.shape;
      const payload = n! * row.reduce((a, b) => a * b, 1) * header.itemSize;
      if (member.size !== header.dataStart + payload) {
        throw new DatasetError(
          path,
          `Cannot use ${source} as shape (${header.shape.join(", ")}) of ${header.descr} needs ${
            header.dataStart + payload
          } bytes: the member has ${member.size}. The shard is corrupt; write it again.`,
        );
      }
      if (rows >= 0 && n !== rows) {
        throw new DatasetError(
          path,
          `Cannot pair the arrays of ${path} as they must have the same number of rows: "${
            keys[0]
          }" has ${rows}, ` +
            `"${key}" has ${n}. Save one row per sample in every array of a shard.`,
        );
      }
      rows = n!;
      columns.push({
        offset: member.dataOffset + header.dataStart,
        descr: header.descr,
        itemSize: header.itemSize,
        size: row.reduce((a, b) => a * b, 1),
      });
      shapes.push(row);
      descrs.push(header.descr);
    }
    return { shard: { path, rows, start, columns }, shapes, descrs };
  });
}

/** The rows of sharded `.npz` files as one dataset, shard after shard. */
export class NpzSource implements RowSource {
  readonly length: number;
  readonly element: ElementSpec;
  readonly #shards: Shard[];
  readonly #keys: NpzKeys;

  /**
   * Opens every shard's directory and headers (not the data).
   *
   * @param expected Row counts a coordinator saw, checked so that a worker reads the same rows.
   * @throws {DatasetError} for a missing or unreadable file, a missing key, a compressed or truncated
   * member, arrays of a shard with different row counts, or shards with different dtypes or row shapes.
   */
  constructor(paths: readonly string[], keys: NpzKeys, expected?: readonly number[]) {
    if (paths.length === 0) {
      throw new RangeError("Cannot open an npz dataset of no shards: pass one path or more");
    }
    const names = [...keys.inputs, ...(keys.y === null ? [] : [keys.y])];
    this.#keys = keys;
    this.#shards = [];
    let start = 0;
    let first: { shapes: number[][]; descrs: string[]; path: string } | undefined;
    paths.forEach((path, s) => {
      const { shard, shapes, descrs } = openShard(path, names, start);
      if (expected && expected[s] !== shard.rows) {
        throw new DatasetError(
          path,
          `Cannot use ${path} as it has ${shard.rows} rows here but ${expected[s]} where the dataset was ` +
            "opened first: the shard changed. Every process must see the same files; do not rewrite them while training.",
        );
      }
      if (!first) first = { shapes, descrs, path };
      names.forEach((key, k) => {
        if (!same(shapes[k]!, first!.shapes[k]!) || descrs[k] !== first!.descrs[k]) {
          throw new DatasetError(
            path,
            `Cannot use ${path} with ${
              first!.path
            } as every shard's "${key}" must have the same dtype and row ` +
              `shape: ${first!.path} has ${first!.descrs[k]} rows of [${
                first!.shapes[k]!.join(", ")
              }], ${path} has ` +
              `${descrs[k]} rows of [${
                shapes[k]!.join(", ")
              }]. Write all shards with the same dtype and shape.`,
          );
        }
      });
      this.#shards.push(shard);
      start += shard.rows;
    });
    this.length = start;
    const shapes = first!.shapes;
    this.element = {
      inputs: shapes.slice(0, keys.inputs.length),
      y: keys.y === null ? null : shapes[keys.inputs.length]!,
    };
  }

  /** The shard paths and their row counts, for another process to open the same rows. */
  get shards(): NpzShardSpec[] {
    return this.#shards.map((s) => ({ path: s.path, rows: s.rows }));
  }

  get keys(): NpzKeys {
    return this.#keys;
  }

  #empty(n: number): RowArray[] {
    const shapes = [...this.element.inputs, ...(this.element.y ? [this.element.y] : [])];
    return shapes.map((row) => ({
      data: new Float32Array(n * row.reduce((a, b) => a * b, 1)),
      shape: [n, ...row],
    }));
  }

  #rows(arrays: RowArray[]): Rows {
    const k = this.#keys.inputs.length;
    return { inputs: arrays.slice(0, k), y: this.#keys.y === null ? null : arrays[k]! };
  }

  /** The shard holding global row `row` (binary search). */
  #shardOf(row: number): number {
    let lo = 0, hi = this.#shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#shards[mid]!.start <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  gather(indices: ArrayLike<number>): Rows {
    checkIndices(indices, this.length);
    const out = this.#empty(indices.length);
    const byShard = new Map<number, number[]>();
    for (let i = 0; i < indices.length; i++) {
      const s = this.#shardOf(indices[i]!);
      const list = byShard.get(s) ?? [];
      list.push(i);
      byShard.set(s, list);
    }
    for (const [s, positions] of byShard) {
      const shard = this.#shards[s]!;
      withFile(shard.path, (file) => {
        shard.columns.forEach((c, k) => {
          const rowBytes = c.size * c.itemSize;
          for (const i of positions) {
            const local = indices[i]! - shard.start;
            toFloat32(
              readAt(file, shard.path, c.offset + local * rowBytes, rowBytes),
              c.descr,
              out[k]!.data,
              i * c.size,
            );
          }
        });
      });
    }
    return this.#rows(out);
  }

  range(start: number, end: number): Rows {
    checkRange(start, end, this.length);
    const out = this.#empty(end - start);
    for (
      let s = start < this.length ? this.#shardOf(start) : this.#shards.length;
      s < this.#shards.length;
      s++
    ) {
      const shard = this.#shards[s]!;
      const from = Math.max(start, shard.start), to = Math.min(end, shard.start + shard.rows);
      if (from >= to) break;
      withFile(shard.path, (file) => {
        shard.columns.forEach((c, k) => {
          const rowBytes = c.size * c.itemSize;
          const raw = readAt(
            file,
            shard.path,
            c.offset + (from - shard.start) * rowBytes,
            (to - from) * rowBytes,
          );
          toFloat32(raw, c.descr, out[k]!.data, (from - start) * c.size);
        });
      });
    }
    return this.#rows(out);
  }
}
