/**
 * Reader for NumPy `.npy` arrays (format versions 1, 2 and 3) and `.npz` archives.
 *
 * Only C-order, little-endian (or byte-sized) numeric arrays are read. Values are interpreted on a
 * little-endian host, which is every platform Deno runs on.
 */

import { unzipSync } from "npm:fflate@0.8.3";
import { DatasetError } from "./dataset_error.ts";

/** Element type of a parsed array. `int64` input is narrowed to `int32` (see {@link parseNpy}). */
export type NpyDtype = "float32" | "float64" | "uint8" | "int8" | "int32" | "bool";

/** Typed array for each {@link NpyDtype}; `bool` is a `Uint8Array` of 0 and 1. */
export type NpyData = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array;

/** A parsed NumPy array in C (row-major) order. */
export interface NpyArray {
  dtype: NpyDtype;
  /** The NumPy type string found in the header, e.g. `<f4` or `<i8`. */
  descr: string;
  shape: number[];
  data: NpyData;
}

/** Options of {@link parseNpy} and {@link parseNpz}. */
export interface NpyOptions {
  /**
   * Reject float arrays that hold NaN or ±Infinity, naming the first offending element.
   * @default false
   */
  rejectNonFinite?: boolean;
}

interface Descr {
  dtype: NpyDtype;
  size: number;
}

const DESCRS: Readonly<Record<string, Descr>> = {
  "<f4": { dtype: "float32", size: 4 },
  "<f8": { dtype: "float64", size: 8 },
  "|u1": { dtype: "uint8", size: 1 },
  "|i1": { dtype: "int8", size: 1 },
  "<i4": { dtype: "int32", size: 4 },
  "<i8": { dtype: "int32", size: 8 },
  "|b1": { dtype: "bool", size: 1 },
};

const SUPPORTED = Object.keys(DESCRS).join(", ");
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function fail(source: string, message: string): never {
  throw new DatasetError(source, `Cannot read NumPy array ${source}: ${message}`);
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

function parseHeader(text: string, source: string): Header {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!text.trimStart().startsWith("{") || !descr || !fortran || !shape) {
    fail(
      source,
      `the header must be a dict with 'descr' (a type string), 'fortran_order' and 'shape': ` +
        `found ${JSON.stringify(text.trim().slice(0, 200))}. Structured dtypes are not supported; ` +
        `save a plain numeric array with numpy.save.`,
    );
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  const parsed = dims.map((d) => (/^\d+L?$/.test(d) ? Number.parseInt(d, 10) : Number.NaN));
  if (parsed.some((d) => !Number.isSafeInteger(d))) {
    fail(source, `the shape must be a tuple of non-negative integers: found (${shape[1]}).`);
  }
  return { descr: descr[1], fortranOrder: fortran[1] === "True", shape: parsed };
}

function checkFinite(data: Float32Array | Float64Array, shape: number[], source: string): void {
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    const index: number[] = [];
    let rest = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      index.unshift(rest % shape[d]);
      rest = Math.floor(rest / shape[d]);
    }
    fail(
      source,
      `element ${i} (index [${index.join(", ")}]) is ${data[i]}, and non-finite values were ` +
        `rejected. Clean the data (e.g. numpy.nan_to_num) or read it with rejectNonFinite: false.`,
    );
  }
}

function narrowInt64(payload: Uint8Array, count: number, source: string): Int32Array {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = view.getBigInt64(8 * i, true);
    if (v < -2147483648n || v > 2147483647n) {
      fail(
        source,
        `int64 element ${i} is ${v}, outside the int32 range [-2147483648, 2147483647] that ` +
          `int64 arrays are narrowed to. Save the array as float64 (or rescale it) instead.`,
      );
    }
    out[i] = Number(v);
  }
  return out;
}

/** A typed-array view over `payload`, copying first when its offset is not aligned to `size`. */
function aligned(payload: Uint8Array, size: number): { buffer: ArrayBuffer; offset: number } {
  const copy = payload.byteOffset % size !== 0 || !(payload.buffer instanceof ArrayBuffer)
    ? payload.slice()
    : payload;
  return { buffer: copy.buffer as ArrayBuffer, offset: copy.byteOffset };
}

function decode(descr: Descr, raw: string, payload: Uint8Array, count: number, source: string): NpyData {
  if (raw === "<i8") return narrowInt64(payload, count, source);
  const { buffer, offset } = aligned(payload, descr.size);
  switch (descr.dtype) {
    case "float32":
      return new Float32Array(buffer, offset, count);
    case "float64":
      return new Float64Array(buffer, offset, count);
    case "int32":
      return new Int32Array(buffer, offset, count);
    case "int8":
      return new Int8Array(buffer, offset, count);
    case "uint8":
      return new Uint8Array(buffer, offset, count);
    case "bool": {
      const data = new Uint8Array(buffer, offset, count);
      const bad = data.findIndex((v) => v > 1);
      if (bad >= 0) fail(source, `bool element ${bad} must be 0 or 1: found ${data[bad]}.`);
      return data;
    }
  }
}

/** What a `.npy` header says: the array's type and shape, and where its payload starts. */
export interface NpyHeader {
  dtype: NpyDtype;
  /** The NumPy type string, e.g. `<f4` or `<i8`. */
  descr: string;
  /** Bytes per element in the file. */
  itemSize: number;
  shape: number[];
  /** Offset of the first payload byte from the start of the `.npy` bytes. */
  dataStart: number;
}

/**
 * Reads the header of a `.npy` file from its first bytes (at least up to the end of the header).
 *
 * @param source File name used in error messages.
 * @throws {DatasetError} on a bad magic, an unsupported version or dtype, Fortran order, or a header
 * cut short.
 */
export function readNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(
      source,
      `the file must start with the magic \\x93NUMPY: found ${
        JSON.stringify(new TextDecoder("latin1").decode(bytes.subarray(0, 6)))
      }. Check that it is a .npy file written by numpy.save.`,
    );
  }
  const major = bytes[6];
  if (major < 1 || major > 3) {
    fail(source, `the format version must be 1, 2 or 3: found ${major}.${bytes[7]}.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthSize = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthSize + headerLength;
  if (bytes.length < dataStart) {
    fail(source, `the header needs ${dataStart} bytes: found only ${bytes.length}. The file is truncated.`);
  }
  const header = parseHeader(
    new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(8 + lengthSize, dataStart)),
    source,
  );
  if (header.fortranOrder) {
    fail(
      source,
      `fortran_order must be False (C order): found True. ` +
        `Save numpy.ascontiguousarray(array) instead.`,
    );
  }
  const descr = DESCRS[header.descr];
  if (descr === undefined) {
    fail(
      source,
      `dtype '${header.descr}' is not supported: supported dtypes are ${SUPPORTED}. ` +
        `Convert the array (e.g. array.astype('<f4')) before saving.`,
    );
  }
  return { dtype: descr.dtype, descr: header.descr, itemSize: descr.size, shape: header.shape, dataStart };
}

/**
 * Parses a `.npy` file (format version 1.0, 2.0 or 3.0).
 *
 * Supported types: `<f4` → float32, `<f8` → float64, `|u1` → uint8, `|i1` → int8, `<i4` → int32,
 * `<i8` → int32 (values outside the int32 range are an error), `|b1` → bool (0/1 bytes).
 * Byte-sized and aligned arrays are views into `bytes`; other data is copied.
 *
 * @param source File name used in error messages.
 * @throws {DatasetError} on a bad magic, an unsupported version or dtype, Fortran order, a payload
 * whose size does not match the shape, or (with `rejectNonFinite`) a NaN or infinity.
 */
export function parseNpy(bytes: Uint8Array, source: string, options: NpyOptions = {}): NpyArray {
  const { dataStart, ...header } = readNpyHeader(bytes, source);
  const descr = DESCRS[header.descr]!;
  const count = header.shape.reduce((a, b) => a * b, 1);
  const expected = count * descr.size;
  const found = bytes.length - dataStart;
  if (found !== expected) {
    fail(
      source,
      `shape (${header.shape.join(", ")}) of ${header.descr} needs ${expected} payload bytes: found ` +
        `${found} (${found < expected ? "truncated" : "too long"}). The file is corrupt; write it again.`,
    );
  }
  const data = decode(descr, header.descr, bytes.subarray(dataStart), count, source);
  if (options.rejectNonFinite && (data instanceof Float32Array || data instanceof Float64Array)) {
    checkFinite(data, header.shape, source);
  }
  return { dtype: descr.dtype, descr: header.descr, shape: header.shape, data };
}

/**
 * Parses a `.npz` archive (as written by `numpy.savez` or `numpy.savez_compressed`) into its
 * arrays, keyed by entry name without the `.npy` suffix.
 *
 * @param source File name used in error messages; each array is reported as `source:entry`.
 * @throws {DatasetError} when the archive is not a readable zip, or an entry is not a valid array.
 */
export function parseNpz(
  bytes: Uint8Array,
  source = "<npz>",
  options: NpyOptions = {},
): Record<string, NpyArray> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (cause) {
    throw new DatasetError(
      source,
      `Cannot read NumPy archive ${source} as it must be a zip file: found ${bytes.length} bytes ` +
        `that fail to unzip (${cause instanceof Error ? cause.message : String(cause)}). ` +
        `The file is truncated or corrupt; write or download it again.`,
      { cause },
    );
  }
  const arrays: Record<string, NpyArray> = {};
  for (const [name, entry] of Object.entries(entries)) {
    if (name.endsWith("/")) continue;
    const key = name.endsWith(".npy") ? name.slice(0, -4) : name;
    arrays[key] = parseNpy(entry, `${source}:${name}`, options);
  }
  return arrays;
}

const ENCODE_DESCRS: readonly [new (n: number) => NpyData, string][] = [
  [Float32Array, "<f4"],
  [Float64Array, "<f8"],
  [Uint8Array, "|u1"],
  [Int8Array, "|i1"],
  [Int32Array, "<i4"],
];

/**
 * Encodes a C-order array as a `.npy` file (format 1.0) that `numpy.load` reads.
 *
 * @param array `data` must have `product(shape)` elements; a `Uint8Array` is written as `|u1`.
 * @throws {RangeError} when the element count does not match the shape.
 */
export function encodeNpy(array: { data: NpyData; shape: readonly number[] }): Uint8Array {
  const { data, shape } = array;
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(
      `Cannot encode an array of shape [${shape.join(", ")}] as it must have ${count} elements: ` +
        `current length is ${data.length}.`,
    );
  }
  const descr = ENCODE_DESCRS.find(([type]) => data instanceof type)?.[1] ?? "|u1";
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = MAGIC.length + 4 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const out = new Uint8Array(MAGIC.length + 4 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out.set([1, 0, header.length & 0xff, header.length >> 8], MAGIC.length);
  out.set(new TextEncoder().encode(header), MAGIC.length + 4);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), MAGIC.length + 4 + header.length);
  return out;
}
