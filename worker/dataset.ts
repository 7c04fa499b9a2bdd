/**
 * Datasets as a worker holds them: the arrays the coordinator shipped once, cached by content hash,
 * or the files the worker opened itself; and the batches cut from them (rows at given indices, or a
 * range of rows).
 */
import type { Batch } from "../shared/model/mod.ts";
import type { DatasetArrays, RowArray } from "../shared/io/protocol/mod.ts";
import type { RowSource } from "../shared/io/dataset/mod.ts";

/** A shipped dataset as a worker holds it. */
export type CachedDataset = DatasetArrays;

/** A dataset a worker serves: shipped arrays, or rows it reads from files itself. */
export type WorkerDataset = CachedDataset | RowSource;

function isSource(ds: WorkerDataset): ds is RowSource {
  return "gather" in ds;
}

function rowSize(a: RowArray): number {
  return a.shape.slice(1).reduce((p, d) => p * d, 1);
}

/** Copies the rows at `indices` into a batch; throws a `RangeError` for an index out of range. */
export function gatherBatch(ds: WorkerDataset, indices: Int32Array): Batch {
  if (isSource(ds)) return ds.gather(indices);
  for (const i of indices) {
    if (i < 0 || i >= ds.length) {
      throw new RangeError(`Cannot gather row ${i} as the dataset has ${ds.length} rows`);
    }
  }
  const take = (a: RowArray) => {
    const r = rowSize(a);
    const out = new Float32Array(indices.length * r);
    for (let i = 0; i < indices.length; i++) {
      out.set(a.data.subarray(indices[i]! * r, (indices[i]! + 1) * r), i * r);
    }
    return { data: out, shape: [indices.length, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(take), y: ds.y ? take(ds.y) : null };
}

/** Rows `start..end` as a batch (views, no copy). */
export function rangeOf(ds: WorkerDataset, start: number, end: number): Batch {
  if (isSource(ds)) return ds.range(start, end);
  const cut = (a: RowArray) => {
    const r = rowSize(a);
    return { data: a.data.subarray(start * r, end * r), shape: [end - start, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(cut), y: ds.y ? cut(ds.y) : null };
}
