/**
 * Keras-style built-in datasets (`keras.datasets.fashion_mnist` / `mnist`) as plain typed arrays.
 *
 * Each file is looked for in this order:
 * 1. the cache: `<cacheDir>/<name>/<file>` (kept only when its SHA-256 matches Keras's),
 * 2. the system directory: `/usr/share/datasets/<name with "-">/<file>` (Debian's
 *    `dataset-fashion-mnist` package; Debian recompresses the archives, so their hashes differ
 *    from Keras's and the package manager's checks are trusted instead),
 * 3. a download from the Keras URLs (or a mirror), SHA-256-verified and written atomically into
 *    the cache.
 */

import { join } from "node:path";
import { DatasetError } from "./dataset_error.ts";
import { downloadFile, sha256Hex } from "./download.ts";
import { gunzip, isGzip, parseIdx } from "./idx.ts";
import { type NpyArray, parseNpz } from "./npy.ts";

/** Names accepted by {@link loadDataset}. */
export type DatasetName = "fashion_mnist" | "mnist";

/** Where Keras downloads its datasets from. */
export const KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/";

/** Where Debian's `dataset-*` packages install their files. */
export const SYSTEM_DATASETS_DIR = "/usr/share/datasets";

/** SHA-256 of each dataset file as published by Keras (`keras/src/datasets/*.py`). */
export const DATASET_FILES: Readonly<Record<DatasetName, Readonly<Record<string, string>>>> = {
  fashion_mnist: {
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
  },
  mnist: {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
  },
};

const IMAGE_SIZE = 28;
const NUM_CLASSES = 10;

/** Grayscale images, row-major `[n, 28, 28]`, values 0–255. */
export interface ImageArray {
  data: Uint8Array;
  shape: [number, number, number];
}

/** A loaded dataset, as Keras's `(x_train, y_train), (x_test, y_test)`. */
export interface Dataset {
  xTrain: ImageArray;
  /** Class indices 0–9, one per training image. */
  yTrain: Uint8Array;
  xTest: ImageArray;
  /** Class indices 0–9, one per test image. */
  yTest: Uint8Array;
  /** The paths the data was read from, in reading order. */
  files: string[];
}

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /**
   * Cache root; files live in `<cacheDir>/<name>/`.
   * @default env SHOAL_DATA, else `$HOME/.cache/shoal`
   */
  cacheDir?: string;
  /**
   * Directory of system-installed datasets, searched after the cache; `null` skips it.
   * @default "/usr/share/datasets"
   */
  systemDir?: string | null;
  /**
   * Base URL to download from (a mirror holding the same file names).
   * @default env SHOAL_DATASET_URL, else {@link KERAS_DATASETS_URL}
   */
  baseUrl?: string;
  /** Expected SHA-256 by file name, replacing entries of {@link DATASET_FILES} (for mirrors of other builds). */
  sha256?: Readonly<Record<string, string>>;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Aborts a download in progress. */
  signal?: AbortSignal;
  /**
   * Receives one line per notable event (download started, cached file rejected).
   * @default no logging
   */
  log?: (message: string) => void;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw error;
  }
}

function defaultCacheDir(): string {
  const fromEnv = env("SHOAL_DATA");
  if (fromEnv) return fromEnv;
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) {
    throw new TypeError(
      "Cannot choose a dataset cache directory as HOME must be set: current value is undefined. " +
        "Set SHOAL_DATA or pass cacheDir.",
    );
  }
  return join(home, ".cache", "shoal");
}

async function readIfPresent(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

interface Resolved {
  path: string;
  bytes: Uint8Array;
}

/** Finds one dataset file by the search order in the module docs, downloading it if needed. */
async function resolveFile(name: DatasetName, file: string, options: LoadDatasetOptions): Promise<Resolved> {
  const log = options.log ?? (() => {});
  const expected = (options.sha256?.[file] ?? DATASET_FILES[name][file]).toLowerCase();
  const cacheDir = join(options.cacheDir ?? defaultCacheDir(), name);
  const cached = join(cacheDir, file);
  const cachedBytes = await readIfPresent(cached);
  if (cachedBytes !== undefined) {
    const actual = await sha256Hex(cachedBytes);
    if (actual === expected) return { path: cached, bytes: cachedBytes };
    log(`Ignoring ${cached}: its SHA-256 is ${actual}, expected ${expected}.`);
  }
  const systemDir = options.systemDir === undefined ? SYSTEM_DATASETS_DIR : options.systemDir;
  if (systemDir !== null) {
    const system = join(systemDir, name.replaceAll("_", "-"), file);
    const systemBytes = await readIfPresent(system);
    if (systemBytes !== undefined) return { path: system, bytes: systemBytes };
  }
  let base = options.baseUrl ?? env("SHOAL_DATASET_URL") ?? KERAS_DATASETS_URL;
  if (!base.endsWith("/")) base += "/";
  const url = base + file;
  log(`Downloading ${url} to ${cached}`);
  await Deno.mkdir(cacheDir, { recursive: true });
  await downloadFile(url, cached, { sha256: expected, fetch: options.fetch, signal: options.signal });
  return { path: cached, bytes: await Deno.readFile(cached) };
}

function checkLabels(labels: Uint8Array, path: string): Uint8Array {
  const bad = labels.findIndex((v) => v >= NUM_CLASSES);
  if (bad >= 0) {
    throw new DatasetError(
      path,
      `Cannot use labels from ${path} as each must be a class index 0–${NUM_CLASSES - 1}: ` +
        `label ${bad} is ${labels[bad]}. The file is corrupt; delete it to download it again.`,
    );
  }
  return labels;
}

function checkImages(shape: readonly number[], path: string): [number, number, number] {
  if (shape.length !== 3 || shape[1] !== IMAGE_SIZE || shape[2] !== IMAGE_SIZE) {
    throw new DatasetError(
      path,
      `Cannot use images from ${path} as they must have shape [n, ${IMAGE_SIZE}, ${IMAGE_SIZE}]: ` +
        `found [${shape.join(", ")}]. Check that the file belongs to this dataset.`,
    );
  }
  return [shape[0], IMAGE_SIZE, IMAGE_SIZE];
}

function checkPair(images: ImageArray, labels: Uint8Array, imagePath: string, labelPath: string): void {
  if (images.shape[0] !== labels.length) {
    throw new DatasetError(
      imagePath,
      `Cannot pair ${imagePath} with ${labelPath} as they must hold one label per image: found ` +
        `${images.shape[0]} images and ${labels.length} labels. One of the files belongs to another ` +
        `split or is corrupt; delete both to download them again.`,
    );
  }
}

function idxUint8(resolved: Resolved, ndim: number): { data: Uint8Array; shape: number[] } {
  const { path, bytes } = resolved;
  const array = parseIdx(isGzip(bytes) ? gunzip(bytes, path) : bytes, path);
  if (array.dtype !== "uint8" || array.shape.length !== ndim) {
    throw new DatasetError(
      path,
      `Cannot use ${path} as it must hold a ${ndim}-D uint8 array: found ${array.shape.length}-D ` +
        `${array.dtype}. Check that the file belongs to this dataset.`,
    );
  }
  return { data: array.data as Uint8Array, shape: array.shape };
}

async function loadFashionMnist(options: LoadDatasetOptions): Promise<Dataset> {
  const split = async (prefix: string) => {
    const labelFile = await resolveFile("fashion_mnist", `${prefix}-labels-idx1-ubyte.gz`, options);
    const imageFile = await resolveFile("fashion_mnist", `${prefix}-images-idx3-ubyte.gz`, options);
    const labels = checkLabels(idxUint8(labelFile, 1).data, labelFile.path);
    const raw = idxUint8(imageFile, 3);
    const images = { data: raw.data, shape: checkImages(raw.shape, imageFile.path) };
    checkPair(images, labels, imageFile.path, labelFile.path);
    return { images, labels, paths: [labelFile.path, imageFile.path] };
  };
  const train = await split("train");
  const test = await split("t10k");
  return {
    xTrain: train.images,
    yTrain: train.labels,
    xTest: test.images,
    yTest: test.labels,
    files: [...train.paths, ...test.paths],
  };
}

function npzUint8(arrays: Record<string, NpyArray>, key: string, ndim: number, path: string): NpyArray {
  const array = arrays[key];
  if (array === undefined) {
    throw new DatasetError(
      path,
      `Cannot use ${path} as it must hold an array "${key}": found [${Object.keys(arrays).join(", ")}]. ` +
        `Check that the file is Keras's mnist.npz.`,
    );
  }
  if (array.dtype !== "uint8" || array.shape.length !== ndim) {
    throw new DatasetError(
      path,
      `Cannot use "${key}" in ${path} as it must be a ${ndim}-D uint8 array: found ` +
        `${array.shape.length}-D ${array.descr}. Check that the file is Keras's mnist.npz.`,
    );
  }
  return array;
}

async function loadMnist(options: LoadDatasetOptions): Promise<Dataset> {
  const { path, bytes } = await resolveFile("mnist", "mnist.npz", options);
  const arrays = parseNpz(bytes, path);
  const split = (suffix: string) => {
    const x = npzUint8(arrays, `x_${suffix}`, 3, path);
    const y = npzUint8(arrays, `y_${suffix}`, 1, path);
    const images = { data: x.data as Uint8Array, shape: checkImages(x.shape, `${path}:x_${suffix}.npy`) };
    const labels = checkLabels(y.data as Uint8Array, `${path}:y_${suffix}.npy`);
    checkPair(images, labels, `${path}:x_${suffix}.npy`, `${path}:y_${suffix}.npy`);
    return { images, labels };
  };
  const train = split("train");
  const test = split("test");
  return {
    xTrain: train.images,
    yTrain: train.labels,
    xTest: test.images,
    yTest: test.labels,
    files: [path],
  };
}

/**
 * Loads a Keras built-in dataset, from the cache, the system directory or a verified download
 * (see the module docs for the search order).
 *
 * @throws {RangeError} for an unknown name, listing the known ones.
 * @throws {DatasetError} for a failed download, a checksum mismatch, or a corrupt or inconsistent
 * file (wrong image size, label count differing from image count, label outside 0–9).
 */
export function loadDataset(name: DatasetName, options: LoadDatasetOptions = {}): Promise<Dataset> {
  switch (name) {
    case "fashion_mnist":
      return loadFashionMnist(options);
    case "mnist":
      return loadMnist(options);
    default:
      return Promise.reject(
        new RangeError(
          `Cannot load dataset "${name}" as name must be one of ${Object.keys(DATASET_FILES).join(", ")}: ` +
            `current value is "${name}".`,
        ),
      );
  }
}
