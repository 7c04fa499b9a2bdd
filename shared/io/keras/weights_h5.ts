/**
 * Keras 3 weights files (`.weights.h5`, and the `model.weights.h5` entry of a `.keras` archive), read
 * and written with h5wasm in its in-memory file system.
 *
 * Layout written by Keras 3.15 (`keras/src/saving/saving_lib.py`, `H5IOStore`), checked against
 * `tests/fixtures/keras/*.weights.h5`:
 *
 * ```
 * /                                   no attributes; superblock version 0 (libver "earliest")
 * ├─ vars/                            attr name = model name ("sequential", "functional_1"); no datasets
 * ├─ layers/
 * │  └─ <group>/vars/                 attr name = the layer's own name ("dense_4", "price", "dropout")
 * │        0, 1, …                    one dataset per variable: trainable ones first, then the others
 * └─ optimizer/vars/                  attr name = optimizer name ("adam", "sgd", "adam_1")
 *       0                             iterations: int64 scalar (shape [])
 *       1                             learning_rate: float32 scalar
 *       2, …                          slots, per trainable variable in model order
 * ```
 *
 * - `<group>` is NOT the layer name: it is the snake_case class name, made unique by a counter over
 *   the model's layer list (`dense`, `dense_1`, …, `batch_normalization`, `dropout_2`); see
 *   `naming.ts`. The layer name is only the `name` attribute of its `vars` group.
 * - Every layer gets a group, weightless ones included (Dropout, Flatten, Concatenate: empty `vars`
 *   with its `name` attribute). InputLayer gets one in Functional models (`input_layer`,
 *   `input_layer_1`) but not in Sequential models, whose layer list omits it.
 * - Variable order: Dense `[kernel (in, out), bias]`; BatchNormalization `[gamma, beta, moving_mean,
 *   moving_variance]`.
 * - Optimizer slots interleave per trainable variable: Adam `m0, v0, m1, v1, …` (AMSGrad adds all
 *   velocity-hats after them); SGD with momentum `momentum0, momentum1, …`. Variable count =
 *   2 + slots × trainable variables (fashion_mlp: 2 + 2 × 12 = 26).
 * - Datasets: little-endian float32 (int64 for iterations), contiguous, uncompressed, no attributes
 *   (Keras adds `dtype = "bfloat16"` only for bfloat16 variables, not supported here).
 * - The `name` attributes are scalar variable-length UTF-8 strings. Links are not creation-ordered,
 *   so HDF5 lists `vars` children by name ("0", "1", "10", "11", "2", …): sort them numerically.
 *
 * @module
 */

import h5wasm, { type Dataset, type File as H5File, type Group as H5Group } from "npm:h5wasm@0.10.3";
import { writeFileAtomic } from "./atomic_write.ts";
import { KerasFileError } from "./errors.ts";

/** Element types of stored variables (numpy names). */
export type KerasDType =
  | "float32"
  | "float64"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64";

/** Typed array holding a variable's values, row-major; its class matches {@link KerasDType}. */
export type KerasArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** One stored variable. `shape` is `[]` for a scalar (then `data.length` is 1). */
export interface KerasVariable {
  readonly shape: readonly number[];
  readonly dtype: KerasDType;
  readonly data: KerasArray;
}

/** The content of one `vars` group: the owner's Keras name and its variables in index order. */
export interface KerasVarGroup {
  /** The group's `name` attribute (layer, model or optimizer name); null when absent. */
  readonly name: string | null;
  readonly vars: readonly KerasVariable[];
}

/** Everything a Keras 3 weights file holds. */
export interface KerasWeights {
  /** The root `vars` group: the model's name; Keras models store no variables there. */
  readonly model: KerasVarGroup;
  /**
   * Layer variable groups by the path of the group that holds `vars`, e.g. `"layers/dense_1"`
   * (nested models: `"layers/functional/layers/dense"`). Iteration order is the file's (by name).
   */
  readonly layers: ReadonlyMap<string, KerasVarGroup>;
  /** `optimizer/vars`, or null when the file has no optimizer state (`save_weights` of an uncompiled model). */
  readonly optimizer: KerasVarGroup | null;
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

const ARRAY_OF_DTYPE = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
} as const;

/** h5wasm dtype strings for writing, by {@link KerasDType}. */
const H5_DTYPE: Record<KerasDType, string> = {
  float32: "<f",
  float64: "<d",
  int8: "<b",
  int16: "<h",
  int32: "<i",
  int64: "<q",
  uint8: "<B",
  uint16: "<H",
  uint32: "<I",
  uint64: "<Q",
};

/**
 * Reads a Keras 3 weights file from a path or from bytes.
 *
 * @throws {KerasFileError} when the file is missing, is not HDF5, is damaged, or holds a `vars`
 * group that is not numbered `0..n-1` or a variable of an unsupported type.
 */
export async function readWeightsH5(source: string | Uint8Array): Promise<KerasWeights> {
  if (typeof source !== "string") return await decodeWeightsH5(source);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(source);
  } catch (error) {
    throw new KerasFileError(
      source,
      `Cannot read Keras weights file ${source}: ${(error as Error).message}. ` +
        "Check the path; weights files are written by model.save_weights(...).",
      { cause: error },
    );
  }
  return await decodeWeightsH5(bytes, source);
}

/**
 * Decodes the bytes of a Keras 3 weights file. `file` names the source in error messages.
 *
 * @throws {KerasFileError} as {@link readWeightsH5}.
 */
export async function decodeWeightsH5(bytes: Uint8Array, file = "<bytes>"): Promise<KerasWeights> {
  if (!hasHdf5Signature(bytes)) {
    throw new KerasFileError(
      file,
      `Cannot read ${file} as Keras weights as it is not an HDF5 file: ` +
        `it has ${bytes.length} bytes and starts with ${hexPreview(bytes)}. ` +
        "Pass a .weights.h5 file written by Keras 3 or by Shoal (a .keras archive goes to readKerasArchive).",
    );
  }
  return await withMemoryFile(bytes, (memPath) => {
    let h5: H5File;
    try {
      h5 = new h5wasm.File(memPath, "r");
    } catch (error) {
      throw new KerasFileError(
        file,
        `Cannot open ${file} as HDF5: the file is truncated or damaged (${bytes.length} bytes). ` +
          "Re-create it from the model, or restore it from a complete copy.",
        { cause: error },
      );
    }
    try {
      return readTree(h5, file);
    } catch (error) {
      if (error instanceof KerasFileError) throw error;
      throw new KerasFileError(
        file,
        `Cannot read the weights in ${file}: the HDF5 data is damaged (${firstLine(error)}). ` +
          "Re-create it from the model, or restore it from a complete copy.",
        { cause: error },
      );
    } finally {
      h5.close();
    }
  });
}

/**
 * Encodes weights as a Keras 3 weights file (same groups, attributes and dtypes as Keras writes).
 *
 * @throws {RangeError} when a variable's data length does not match its shape, or its typed-array
 * class does not match its dtype, or a layer path is not a valid group path.
 */
export async function encodeWeightsH5(weights: KerasWeights): Promise<Uint8Array> {
  validateWeights(weights);
  return await withMemoryFile(null, (memPath, FS) => {
    const h5 = new h5wasm.File(memPath, "w", { libver: ["earliest", "v200"] });
    try {
      writeVarGroup(h5, "", weights.model);
      for (const [path, group] of weights.layers) writeVarGroup(h5, path, group);
      if (weights.optimizer) writeVarGroup(h5, "optimizer", weights.optimizer);
    } finally {
      h5.close();
    }
    return FS.readFile(memPath);
  });
}

/**
 * Writes weights to `path` as a Keras 3 weights file, atomically (see `writeFileAtomic`): on
 * failure the previous file at `path` is left untouched.
 *
 * @throws {RangeError} as {@link encodeWeightsH5}.
 */
export async function writeWeightsH5(path: string, weights: KerasWeights): Promise<void> {
  await writeFileAtomic(path, await encodeWeightsH5(weights));
}

/** Number of elements a shape holds (1 for a scalar shape `[]`). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function readTree(h5: H5File, file: string): KerasWeights {
  let model: KerasVarGroup = { name: null, vars: [] };
  let optimizer: KerasVarGroup | null = null;
  const layers = new Map<string, KerasVarGroup>();
  const visit = (group: H5Group, path: string): void => {
    for (const key of group.keys()) {
      const child = group.get(key);
      if (!(child instanceof h5wasm.Group)) continue;
      if (key !== "vars") {
        visit(child, path === "" ? key : `${path}/${key}`);
        continue;
      }
      const vars = readVarGroup(child, file);
      if (path === "") model = vars;
      else if (path === "optimizer") optimizer = vars;
      else layers.set(path, vars);
    }
  };
  visit(h5, "");
  return { model, layers, optimizer };
}

function readVarGroup(group: H5Group, file: string): KerasVarGroup {
  const keys = group.keys();
  const indices = keys.map(Number).sort((a, b) => a - b);
  if (!indices.every((value, i) => value === i)) {
    throw new KerasFileError(
      file,
      `Cannot read ${group.path} in ${file} as its variables must be named 0..${keys.length - 1}: ` +
        `found ${
          JSON.stringify(keys)
        }. This is not a Keras 3 weights layout (Keras 2 files are not supported).`,
    );
  }
  const vars = indices.map((i) => readVariable(group.get(String(i)), `${group.path}/${i}`, file));
  const nameAttr = group.attrs["name"];
  const name = nameAttr === undefined ? null : String(nameAttr.value);
  return { name, vars };
}

function readVariable(entity: unknown, path: string, file: string): KerasVariable {
  if (!(entity instanceof h5wasm.Dataset)) {
    throw new KerasFileError(file, `Cannot read ${path} in ${file} as it is not a dataset.`);
  }
  const dataset = entity as Dataset;
  const dtype = dtypeOf(dataset, path, file);
  const shape = dataset.shape ?? [];
  const value = dataset.value;
  const ArrayClass = ARRAY_OF_DTYPE[dtype];
  let data: KerasArray;
  if (value instanceof ArrayClass) {
    data = value;
  } else if (typeof value === "number" || typeof value === "bigint") {
    data = new (ArrayClass as new (n: number) => KerasArray)(1);
    data[0] = value;
  } else {
    throw new KerasFileError(file, `Cannot read ${path} in ${file}: unexpected value for dtype ${dtype}.`);
  }
  if (data.length !== shapeSize(shape)) {
    throw new KerasFileError(
      file,
      `Cannot read ${path} in ${file}: ${data.length} values for shape [${shape}]. The file is damaged.`,
    );
  }
  return { shape, dtype, data };
}

function dtypeOf(dataset: Dataset, path: string, file: string): KerasDType {
  const meta = dataset.metadata;
  const marker = dataset.attrs["dtype"]?.value;
  const unsupported = (what: string) =>
    new KerasFileError(
      file,
      `Cannot read ${path} in ${file} as its type is ${what}: only little-endian integers and ` +
        "float32/float64 are supported. Save the model with float32 variables.",
    );
  if (marker !== undefined) throw unsupported(String(marker));
  if (!meta.littleEndian) throw unsupported("big-endian");
  if (meta.type === 1 && meta.size === 4) return "float32";
  if (meta.type === 1 && meta.size === 8) return "float64";
  if (meta.type === 0 && [1, 2, 4, 8].includes(meta.size)) {
    return `${meta.signed ? "int" : "uint"}${meta.size * 8}` as KerasDType;
  }
  throw unsupported(`HDF5 class ${meta.type} of ${meta.size} bytes`);
}

function writeVarGroup(h5: H5File, path: string, group: KerasVarGroup): void {
  let parent: H5Group = h5;
  for (const part of path === "" ? [] : path.split("/")) {
    const existing = parent.get(part);
    parent = existing instanceof h5wasm.Group ? existing : parent.create_group(part);
  }
  const vars = parent.create_group("vars");
  if (group.name !== null) vars.create_attribute("name", group.name);
  group.vars.forEach((variable, i) => {
    vars.create_dataset({
      name: String(i),
      data: variable.data,
      shape: [...variable.shape],
      dtype: H5_DTYPE[variable.dtype],
    });
  });
}

function validateWeights(weights: KerasWeights): void {
  const check = (where: string, group: KerasVarGroup) => {
    group.vars.forEach((variable, i) => {
      const ArrayClass = ARRAY_OF_DTYPE[variable.dtype];
      if (ArrayClass === undefined) {
        throw new RangeError(
          `Cannot write ${where}/vars/${i} as dtype must be one of ${
            Object.keys(ARRAY_OF_DTYPE).join(", ")
          }: ` +
            `current value is ${variable.dtype}`,
        );
      }
      if (!(variable.data instanceof ArrayClass)) {
        throw new RangeError(
          `Cannot write ${where}/vars/${i} as dtype ${variable.dtype} needs a ${ArrayClass.name}: ` +
            `current data is a ${variable.data.constructor.name}`,
        );
      }
      const size = shapeSize(variable.shape);
      if (variable.data.length !== size) {
        throw new RangeError(
          `Cannot write ${where}/vars/${i} as shape [${variable.shape}] needs ${size} values: ` +
            `current data has ${variable.data.length}`,
        );
      }
    });
  };
  check("(root)", weights.model);
  for (const [path, group] of weights.layers) {
    const parts = path.split("/");
    if (path === "optimizer" || parts.some((p) => p === "" || p === "vars")) {
      throw new RangeError(
        `Cannot write layer group "${path}" as a layer path must be non-empty segments joined by "/", ` +
          'none of them "vars", and not "optimizer": use the group paths from kerasVarGroups()',
      );
    }
    check(path, group);
  }
  if (weights.optimizer) check("optimizer", weights.optimizer);
}

/** The part of h5wasm's Emscripten file system used here. */
interface MemoryFs {
  writeFile(path: string, data: Uint8Array): void;
  readFile(path: string): Uint8Array;
  unlink(path: string): void;
}

/**
 * Runs `body` with a unique path in h5wasm's in-memory file system, pre-filled with `bytes` when
 * given, and removes the file afterwards. HDF5 errors are turned into exceptions for the duration.
 */
async function withMemoryFile<T>(
  bytes: Uint8Array | null,
  body: (memPath: string, fs: MemoryFs) => T,
): Promise<T> {
  const module = await h5wasm.ready;
  const fs = module.FS as unknown as MemoryFs | null;
  if (!fs) throw new Error("Cannot use h5wasm as its in-memory file system did not initialise");
  module.activate_throwing_error_handler();
  const memPath = `/shoal-${crypto.randomUUID()}.h5`;
  if (bytes) fs.writeFile(memPath, bytes);
  try {
    return body(memPath, fs);
  } finally {
    try {
      fs.unlink(memPath);
    } catch {
      // The file was never created (e.g. the HDF5 create call failed).
    }
  }
}

function hasHdf5Signature(bytes: Uint8Array): boolean {
  // HDF5 looks for its signature at 0, 512, 1024, 2048, … (after an optional user block).
  for (let offset = 0; offset + HDF5_SIGNATURE.length <= bytes.length; offset = offset ? offset * 2 : 512) {
    if (HDF5_SIGNATURE.every((b, i) => bytes[offset + i] === b)) return true;
  }
  return false;
}

function hexPreview(bytes: Uint8Array): string {
  if (bytes.length === 0) return "nothing (empty file)";
  return Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0] ?? "";
}
