/**
 * Strict reader for the IDX format of MNIST and Fashion-MNIST
 * (`train-images-idx3-ubyte` and friends), plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, the number of dimensions, then one big-endian uint32 per
 * dimension, then the values in row-major order, big-endian.
 */

import { gunzipSync } from "node:zlib";
import { DatasetError } from "./dataset_error.ts";

/** Element types an IDX file can hold. */
export type IdxDtype = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** Typed array for each {@link IdxDtype}. */
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX array. `data` is in row-major order and has `product(shape)` elements. */
export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

interface IdxType {
  dtype: IdxDtype;
  size: number;
}

const IDX_TYPES: Readonly<Record<number, IdxType>> = {
  0x08: { dtype: "uint8", size: 1 },
  0x09: { dtype: "int8", size: 1 },
  0x0b: { dtype: "int16", size: 2 },
  0x0c: { dtype: "int32", size: 4 },
  0x0d: { dtype: "float32", size: 4 },
  0x0e: { dtype: "float64", size: 8 },
};

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1;
}

/**
 * Parses an uncompressed IDX file.
 *
 * `uint8` and `int8` data are views into `bytes` (no copy); wider types are decoded from big-endian
 * into new arrays.
 *
 * @param bytes The whole file, already decompressed.
 * @param source File name used in error messages.
 * @throws {DatasetError} on a wrong magic number, an unknown type byte, or a payload whose size is
 * not the product of the dimensions.
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  if (isGzip(bytes)) {
    throw new DatasetError(
      source,
      `Cannot parse IDX file ${source} as it is gzip-compressed: found the gzip magic 1f 8b. ` +
        `Read it with readIdxFile, or decompress it first.`,
    );
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DatasetError(
      source,
      `Cannot parse IDX file ${source} as it must start with the magic 00 00 <type> <ndim>: ` +
        `found ${bytes.length < 4 ? `only ${bytes.length} bytes` : hex(bytes.subarray(0, 4))}. ` +
        `Check that the file is an IDX file (e.g. train-images-idx3-ubyte) and re-download it.`,
    );
  }
  const typeByte = bytes[2];
  const type = IDX_TYPES[typeByte];
  if (type === undefined) {
    throw new DatasetError(
      source,
      `Cannot parse IDX file ${source} as its type byte must be one of 08 (uint8), 09 (int8), ` +
        `0b (int16), 0c (int32), 0d (float32), 0e (float64): found ${
          typeByte.toString(16).padStart(2, "0")
        }. The file is corrupt or not an IDX file; re-download it.`,
    );
  }
  const ndim = bytes[3];
  const headerSize = 4 + 4 * ndim;
  if (bytes.length < headerSize) {
    throw new DatasetError(
      source,
      `Cannot parse IDX file ${source} as its header declares ${ndim} dimensions (${headerSize} ` +
        `header bytes): found only ${bytes.length} bytes. The file is truncated; re-download it.`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * type.size;
  const found = bytes.length - headerSize;
  if (found !== expected) {
    throw new DatasetError(
      source,
      `Cannot parse IDX file ${source} as shape [${shape.join(", ")}] of ${type.dtype} needs ` +
        `${expected} payload bytes: found ${found} (${found < expected ? "truncated" : "too long"}). ` +
        `The file is corrupt; re-download it.`,
    );
  }
  return { dtype: type.dtype, shape, data: decode(type.dtype, view, headerSize, count) };
}

function decode(dtype: IdxDtype, view: DataView, offset: number, count: number): IdxData {
  const start = view.byteOffset + offset;
  switch (dtype) {
    case "uint8":
      return new Uint8Array(view.buffer, start, count);
    case "int8":
      return new Int8Array(view.buffer, start, count);
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/**
 * Decompresses gzip bytes.
 *
 * @param source File name used in error messages.
 * @throws {DatasetError} when the stream is truncated or corrupt.
 */
export function gunzip(bytes: Uint8Array, source: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (cause) {
    throw new DatasetError(
      source,
      `Cannot decompress ${source} as it must be a complete gzip stream: found ${bytes.length} bytes ` +
        `that fail to inflate (${cause instanceof Error ? cause.message : String(cause)}). ` +
        `The file is truncated or corrupt; delete it and download it again.`,
      { cause },
    );
  }
}

/**
 * Reads an IDX file from disk, gunzipping it when it starts with the gzip magic.
 *
 * @throws {DatasetError} for corrupt gzip or IDX content; `Deno.errors.NotFound` when absent.
 */
export async function readIdxFile(path: string): Promise<IdxArray> {
  const bytes = await Deno.readFile(path);
  return parseIdx(isGzip(bytes) ? gunzip(bytes, path) : bytes, path);
}
