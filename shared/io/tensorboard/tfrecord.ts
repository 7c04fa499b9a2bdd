/**
 * TFRecord framing, the container format of TensorBoard event files.
 *
 * Each record is `uint64 length (LE) | uint32 masked CRC32C of the length bytes (LE) | data |
 * uint32 masked CRC32C of data (LE)`. The mask is TensorFlow's `MaskedCrc`:
 * `((crc >>> 15) | (crc << 17)) + 0xa282ead8` (mod 2^32).
 *
 * @module
 */

import { crc32c } from "npm:@aws-crypto/crc32c@5.2.0";

/** Bytes a record adds around its data: 8 (length) + 4 (length CRC) + 4 (data CRC). */
export const TFRECORD_OVERHEAD_BYTES = 16;

const MASK_DELTA = 0xa282ead8;

/** CRC32C (Castagnoli) of `data` as an unsigned 32-bit integer. */
export function crc32cOf(data: Uint8Array): number {
  return crc32c(data) >>> 0;
}

/** TensorFlow's masked CRC32C of `data`, as stored in TFRecord files. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32cOf(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/**
 * Frames `data` as one TFRecord: length, masked CRC of the length, data, masked CRC of the data.
 * @returns a new buffer of `data.length + 16` bytes.
 */
export function encodeTFRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + TFRECORD_OVERHEAD_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}
