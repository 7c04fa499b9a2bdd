/**
 * Datasets as a worker holds them: the arrays the coordinator shipped once, cached by content hash,
 * or the files the worker opened itself, read through a reader that reads the next slice's rows while
 * this slice computes; and the batches cut from them (rows at given indices, or a range of rows).
 */
import type { Batch } from "../shared/model/mod.ts";
import type { DatasetArrays, ShippableArray } from "../shared/io/protocol/mod.ts";
import { PrefetchingReader } from "../shared/io/dataset/mod.ts";

/** A shipped dataset as a worker holds it. */
export type CachedDataset = DatasetArrays;

/** A dataset a worker serves: shipped arrays, or rows it reads from files itself. */
export type WorkerDataset = CachedDataset | PrefetchingReader;

function rowSize(a: ShippableArray): number {
  return a.shape.slice(1).reduce((p, d) => p * d, 1);
}

/**
 * Copies the rows at `indices` into a batch, and starts reading the `ahead` rows (the next step's
 * slice) of a file-backed dataset; throws a `RangeError` for an index out of range.
 */
export async function gatherBatch(
  ds: WorkerDataset,
  indices: Int32Array,
  ahead?: Int32Array,
): Promise<Batch> {
  if (ds instanceof PrefetchingReader) {
    const rows = ds.gather(indices); // taken first: the read ahead then fits in the depth
    if (ahead) ds.prefetch(ahead);
    return await rows;
  }
  for (const i of indices) {
    if (i < 0 || i >= ds.length) {
      throw new RangeError(`Cannot gather row ${i} as the dataset has ${ds.length} rows`);
    }
  }
  // Bytes become float32 here, batch by batch.
  const take = (a: ShippableArray) => {
    const r = rowSize(a);
    const out = new Float32Array(indices.length * r);
    for (let i = 0; i < indices.length; i++) {
      out.set(a.data.subarray(indices[i]! * r, (indices[i]! + 1) * r), i * r);
    }
    return { data: out, shape: [indices.length, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(take), y: ds.y ? take(ds.y) : null };
}

/**
 * Rows `start..end` as a batch (views, no copy, for shipped float32 arrays; bytes become float32), and for a file-backed dataset
 * the read of rows `ahead` (the next chunk) started.
 */
export async function rangeOf(
  ds: WorkerDataset,
  start: number,
  end: number,
  ahead?: [number, number],
): Promise<Batch> {
  if (ds instanceof PrefetchingReader) {
    const rows = ds.range(start, end);
    if (ahead) ds.prefetchRange(...ahead);
    return await rows;
  }
  const cut = (a: ShippableArray) => {
    const r = rowSize(a);
    const rows = a.data.subarray(start * r, end * r);
    return {
      data: rows instanceof Float32Array ? rows : Float32Array.from(rows),
      shape: [end - start, ...a.shape.slice(1)],
    };
  };
  return { inputs: ds.inputs.map(cut), y: ds.y ? cut(ds.y) : null };
}

/** Stops a file-backed dataset's reader thread; shipped arrays need nothing. */
export function closeDataset(ds: WorkerDataset): void {
  if (ds instanceof PrefetchingReader) ds.close();
}
