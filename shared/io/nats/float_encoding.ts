/**
 * Encodings of float32 arrays (gradients, weights) on the wire.
 *
 * - `f32`: the raw little-endian bytes, exact.
 * - `bf16`: the upper 16 bits of each float32, rounded to nearest even; NaN stays NaN, values
 *   beyond the bf16 range round to ±Infinity. Relative error at most 2^-8. Half the bytes.
 *
 * Both assume a little-endian host (x86-64, arm64); the module refuses to load elsewhere.
 *
 * @module
 */
import { z } from "npm:zod@4.6.7";
import { asFloat32, copyBytes } from "./codec.ts";

/** A float32 array's wire encoding. */
export type FloatEncoding = "f32" | "bf16";

/** Schema of {@link FloatEncoding}, for message headers. */
export const FloatEncodingSchema = z.enum(["f32", "bf16"]);

/** Bytes per element of each encoding. */
export const BYTES_PER_ELEMENT: Readonly<Record<FloatEncoding, number>> = { f32: 4, bf16: 2 };

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("Cannot use the float encodings as this host is big-endian: Shoal needs little-endian");
}

/**
 * Encodes `values`. `f32` returns a view of the same bytes (no copy); `bf16` a new array of
 * `2 * values.length` bytes.
 */
export function encodeF32(values: Float32Array, encoding: FloatEncoding): Uint8Array {
  if (encoding === "f32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (encoding !== "bf16") throw unknownEncoding(encoding);
  const bits = values.byteOffset % 4 === 0
    ? new Uint32Array(values.buffer, values.byteOffset, values.length)
    : new Uint32Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  narrowToBf16(bits, out);
  return new Uint8Array(out.buffer);
}

/**
 * Decodes `bytes` in `encoding` into `out` (which must have the decoded length) or into a new
 * array. For `f32` without `out`, the result is a view of `bytes` when it is 4-byte aligned.
 * Throws a `RangeError` on a length that does not fit.
 */
export function decodeF32(bytes: Uint8Array, encoding: FloatEncoding, out?: Float32Array): Float32Array {
  const size = BYTES_PER_ELEMENT[encoding];
  if (size === undefined) throw unknownEncoding(encoding);
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(
      `Cannot decode ${encoding} values as the byte length must be a multiple of ${size}: current length is ${bytes.byteLength}`,
    );
  }
  const length = bytes.byteLength / size;
  if (out && out.length !== length) {
    throw new RangeError(
      `Cannot decode ${length} ${encoding} values into an output of length ${out.length}: pass an output of length ${length}`,
    );
  }
  if (encoding === "f32") {
    const view = asFloat32(bytes);
    if (!out) return view;
    out.set(view);
    return out;
  }
  const target = out ?? new Float32Array(length);
  const source = bytes.byteOffset % 2 === 0
    ? new Uint16Array(bytes.buffer, bytes.byteOffset, length)
    : new Uint16Array(copyBytes(bytes).buffer);
  widenBf16(source, new Uint32Array(target.buffer, target.byteOffset, length));
  return target;
}

/**
 * The loops of the two encodings, each the whole body of a small function that runs once at load:
 * V8 otherwise compiles such a loop on stack replacement before the code after it ran, and throws the
 * optimized code away on every call (see shared/model/vector.ts).
 */
function narrowToBf16(bits: Uint32Array, out: Uint16Array): void {
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x0040 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

function widenBf16(source: Uint16Array, bits: Uint32Array): void {
  for (let i = 0; i < source.length; i++) bits[i] = source[i]! << 16;
}

for (let warm = 0; warm < 2; warm++) {
  narrowToBf16(new Uint32Array(4), new Uint16Array(4));
  widenBf16(new Uint16Array(4), new Uint32Array(4));
}

function unknownEncoding(encoding: string): RangeError {
  return new RangeError(`Cannot use float encoding "${encoding}" as it must be "f32" or "bf16"`);
}
