/**
 * Keras-style dataset loaders returning tensors (`datasets.fashionMnist.loadData()`), and datasets
 * read by row that `fit`, `evaluate` and `predict` take in place of x and y
 * (`datasets.fromNpz("data/train-*.npz", { x: "x", y: "y" })`).
 */
import { tf } from "./tf.ts";
import { type DatasetName, loadDataset, type LoadDatasetOptions } from "../io/datasets.ts";
import {
  Dataset,
  fromArrays as fromRowArrays,
  fromGenerator as fromRowGenerator,
  type GeneratorDatasetOptions,
  type RowArray,
  type Rows,
} from "../io/dataset/mod.ts";

type Split = [tf.Tensor, tf.Tensor];

async function load(name: DatasetName, opts?: LoadDatasetOptions): Promise<[Split, Split]> {
  const ds = await loadDataset(name, opts);
  const images = (a: { data: Uint8Array; shape: [number, number, number] }) =>
    tf.tensor(Int32Array.from(a.data), a.shape, "int32");
  const labels = (a: Uint8Array) => tf.tensor(Int32Array.from(a), [a.length], "int32");
  return [[images(ds.xTrain), labels(ds.yTrain)], [images(ds.xTest), labels(ds.yTest)]];
}

/** `[[xTrain, yTrain], [xTest, yTest]]`: int32 images [n, 28, 28] with values 0–255 and int32 labels. */
export const fashionMnist = { loadData: (opts?: LoadDatasetOptions) => load("fashion_mnist", opts) };
/** MNIST, searched in the cache, then downloaded and verified. */
export const mnist = { loadData: (opts?: LoadDatasetOptions) => load("mnist", opts) };

export { Dataset };
export { fromCsv, fromNpz } from "../io/dataset/mod.ts";
export type { CsvDatasetOptions, GeneratorDatasetOptions, NpzDatasetOptions } from "../io/dataset/mod.ts";

/** An array of rows as `fromArrays` and `fromGenerator` take it: a tensor or `{ data, shape }`. */
export type RowData = tf.Tensor | RowArray;

function rowArray(v: RowData, what: string): RowArray {
  if (v instanceof tf.Tensor) {
    if (v.shape.length === 0) throw new RangeError(`Cannot use a scalar as ${what}: pass one row per sample`);
    return { data: Float32Array.from(v.dataSync() as ArrayLike<number>), shape: [...v.shape] };
  }
  if (v && v.data instanceof Float32Array && Array.isArray(v.shape)) return v;
  throw new TypeError(`Cannot use ${what}: pass a tf.Tensor or { data: Float32Array, shape }`);
}

function rows(x: RowData | RowData[], y: RowData | null | undefined): Rows {
  const inputs = (Array.isArray(x) ? x : [x]).map((v, i) => rowArray(v, `input ${i}`));
  return { inputs, y: y === null || y === undefined ? null : rowArray(y, "y") };
}

/** A dataset of arrays in memory (Keras `tf.data.Dataset.from_tensor_slices((x, y))`). */
export function fromArrays(x: RowData | RowData[], y?: RowData | null): Dataset {
  const r = rows(x, y);
  return fromRowArrays(r.inputs, r.y);
}

/**
 * A dataset from an async generator of batches `{ x, y }`, spilled once to `.npz` shards on disk so
 * that epochs can shuffle it and workers can read it (see {@link GeneratorDatasetOptions.dir}).
 */
export function fromGenerator(
  batches: AsyncIterable<{ x: RowData | RowData[]; y?: RowData | null }>,
  opts?: GeneratorDatasetOptions,
): Promise<Dataset> {
  async function* converted() {
    for await (const b of batches) yield rows(b.x, b.y);
  }
  return fromRowGenerator(converted(), opts);
}
