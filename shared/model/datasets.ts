/** Keras-style dataset loaders returning tensors: `datasets.fashionMnist.loadData()`. */
import { tf } from "./tf.ts";
import { type DatasetName, loadDataset, type LoadDatasetOptions } from "../io/datasets.ts";

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
