/**
 * Datasets as a worker holds them: the arrays the coordinator shipped once, cached by content hash,
 * and the batches cut from them (rows at given indices, or a range of rows).
 */
import type { Batch } from "../shared/model/mod.ts";

/** One array of rows, rows first. */
export interface RowArray {
  data: Float32Array;
  shape: number[];
}

/** The inputs (one per model input) and labels of a shipped dataset. */
export interface CachedDataset {
  inputs: RowArray[];
  y: RowArray | null;
  length: number;
}

function rowSize(a: RowArray): number {
  return a.shape.slice(1).reduce((p, d) => p * d, 1);
}

/**
 * Splits a data message body (every input, then y, f32 rows first) into arrays of the given shapes.
 * Throws a `RangeError` when the body does not hold exactly those shapes.
 */
export function datasetFromBody(body: Float32Array, inputs: number[][], y: number[] | null): CachedDataset {
  const shapes = y ? [...inputs, y] : inputs;
  const sizes = shapes.map((s) => s.reduce((p, d) => p * d, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== body.length) {
    throw new RangeError(
      `Cannot read the dataset as its shapes ${
        JSON.stringify(shapes)
      } need ${total} values: the body holds ${body.length}`,
    );
  }
  let offset = 0;
  const arrays = shapes.map((shape, i) => {
    const data = body.subarray(offset, offset + sizes[i]!);
    offset += sizes[i]!;
    return { data, shape };
  });
  const length = inputs[0]?.[0] ?? 0;
  for (const a of arrays) {
    if (a.shape[0] !== length) {
      throw new RangeError(
        `Cannot read the dataset as its arrays have ${a.shape[0]} and ${length} rows: they must match`,
      );
    }
  }
  return { inputs: arrays.slice(0, inputs.length), y: y ? arrays[inputs.length]! : null, length };
}

/** Copies the rows at `indices` into a batch; throws a `RangeError` for an index out of range. */
export function gatherBatch(ds: CachedDataset, indices: Int32Array): Batch {
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
export function rangeOf(ds: CachedDataset, start: number, end: number): Batch {
  const cut = (a: RowArray) => {
    const r = rowSize(a);
    return { data: a.data.subarray(start * r, end * r), shape: [end - start, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(cut), y: ds.y ? cut(ds.y) : null };
}
