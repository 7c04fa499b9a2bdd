/**
 * Training data as the trainer handles it: one flat array per model input (and for labels), rows first.
 * Converts what users pass to `fit` (tensors, nested arrays, typed arrays) once, up front. Inputs may be
 * bytes (`Uint8Array`, e.g. image pixels): they are held as given and converted to float32 batch by
 * batch, as Keras casts a uint8 array to the model's float inputs, so a dataset of images takes a
 * quarter of the memory of its float copy. Scale them in the model (a `Rescaling(1 / 255)` layer).
 */
import { tf } from "../shared/model/mod.ts";
import type { Batch } from "../shared/model/mod.ts";
import type { Dataset as RowDataset } from "../shared/io/dataset/mod.ts";

/** One array of rows: `shape[0]` rows of `shape.slice(1)` each. */
export interface ArrayData {
  data: Float32Array | Uint8Array;
  shape: number[];
}

/** Inputs (one per model input) and labels with the same row count. */
export interface Dataset {
  inputs: ArrayData[];
  y: ArrayData | null;
  length: number;
  /**
   * Where the rows are read from when they are not held here (files every worker opens): then the
   * arrays above are empty and only their shapes count.
   */
  source?: RowDataset;
}

/**
 * A row dataset as the trainer handles it: its arrays when they are in memory (shipped to workers as
 * before), else its shapes with the dataset as the `source` of the rows.
 */
export function fromRowDataset(ds: RowDataset): Dataset {
  const memory = ds.memory;
  if (memory) return { inputs: memory.inputs, y: memory.y, length: ds.length };
  const shapeOnly = (row: number[]): ArrayData => ({ data: new Float32Array(0), shape: [ds.length, ...row] });
  return {
    inputs: ds.element.inputs.map(shapeOnly),
    y: ds.element.y === null ? null : shapeOnly(ds.element.y),
    length: ds.length,
    source: ds,
  };
}

/** What `fit`/`evaluate`/`predict` accept for x or y. */
export type DataLike = tf.Tensor | number[] | number[][] | number[][][] | number[][][][] | ArrayData;

function toArrayData(v: DataLike, what: string): ArrayData {
  if (v instanceof tf.Tensor) {
    if (v.shape.length === 0) throw new RangeError(`Cannot use a scalar as ${what}: pass one row per sample`);
    const data = v.dtype === "float32"
      ? v.dataSync() as Float32Array
      : Float32Array.from(v.dataSync() as ArrayLike<number>);
    return { data: data.slice(), shape: [...v.shape] };
  }
  if (Array.isArray(v)) {
    const t = tf.tensor(v as number[]);
    try {
      return toArrayData(t, what);
    } finally {
      t.dispose();
    }
  }
  if (isArrayData(v) && Array.isArray(v.shape)) {
    const size = v.shape.reduce((a, b) => a * b, 1);
    if (size !== v.data.length) {
      throw new RangeError(
        `Cannot use ${what} as its shape [${v.shape}] needs ${size} values: received ${v.data.length}`,
      );
    }
    return v;
  }
  throw new TypeError(
    `Cannot use ${what}: pass a tf.Tensor, a nested number array, or { data: Float32Array | Uint8Array, shape }`,
  );
}

/** Builds a dataset from user x (one input or a list) and y; checks row counts. */
export function toDataset(x: DataLike | DataLike[], y: DataLike | null | undefined): Dataset {
  const list = Array.isArray(x) && (x.length === 0 || x[0] instanceof tf.Tensor || isArrayData(x[0]))
    ? x as DataLike[]
    : [x as DataLike];
  const inputs = list.map((v, i) => toArrayData(v, list.length > 1 ? `input ${i}` : "x"));
  const length = inputs[0]?.shape[0] ?? 0;
  inputs.forEach((a, i) => {
    if (a.shape[0] !== length) {
      throw new RangeError(
        `Cannot use inputs with different sample counts: input 0 has ${length} rows, input ${i} has ${
          a.shape[0]
        }`,
      );
    }
  });
  const labels = y === null || y === undefined ? null : toArrayData(y, "y");
  if (labels && labels.shape[0] !== length) {
    throw new RangeError(
      `Data cardinality is ambiguous: x has ${length} samples but y has ${labels.shape[0]}. ` +
        "Make sure all arrays contain the same number of samples.",
    );
  }
  return { inputs, y: labels, length };
}

/** Whether `v` is an {@link ArrayData} (`{ data: Float32Array | Uint8Array, shape }`). */
export function isArrayData(v: unknown): v is ArrayData {
  const data = !!v && typeof v === "object" ? (v as ArrayData).data : undefined;
  return data instanceof Float32Array || data instanceof Uint8Array;
}

function rowSize(a: ArrayData): number {
  return a.shape.slice(1).reduce((p, d) => p * d, 1);
}

/** Rows `start..end` of every array (views, no copy). */
export function sliceRows(ds: Dataset, start: number, end: number): Dataset {
  if (ds.source) {
    throw new RangeError(
      "Cannot split rows off a file-backed dataset (validationSplit) as its rows are not held here: " +
        "pass validationData, e.g. another datasets.fromNpz(...) over the validation shards",
    );
  }
  const cut = (a: ArrayData): ArrayData => {
    const r = rowSize(a);
    return { data: a.data.subarray(start * r, end * r), shape: [end - start, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(cut), y: ds.y ? cut(ds.y) : null, length: end - start };
}

/** Copies the rows at `indices` into a batch (as float32, whatever the arrays hold). */
export function gatherRows(ds: Dataset, indices: ArrayLike<number>): Batch {
  if (ds.source) return ds.source.gather(indices);
  const take = (a: ArrayData) => {
    const r = rowSize(a);
    const out = new Float32Array(indices.length * r);
    for (let i = 0; i < indices.length; i++) {
      const s = indices[i]! * r;
      out.set(a.data.subarray(s, s + r), i * r);
    }
    return { data: out, shape: [indices.length, ...a.shape.slice(1)] };
  };
  return { inputs: ds.inputs.map(take), y: ds.y ? take(ds.y) : null };
}

/** Rows `start..end` as a batch (views of float32 arrays, copies of byte arrays). */
export function rangeBatch(ds: Dataset, start: number, end: number): Batch {
  if (ds.source) return ds.source.range(start, end);
  const s = sliceRows(ds, start, end);
  const float = (a: ArrayData) => ({
    data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data),
    shape: a.shape,
  });
  return { inputs: s.inputs.map(float), y: s.y && float(s.y) };
}

/** Per-sample shape of an array. */
export function sampleShape(a: ArrayData): number[] {
  return a.shape.slice(1);
}
