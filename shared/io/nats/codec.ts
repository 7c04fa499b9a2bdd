/**
 * The wire format of every Shoal NATS message: a small JSON header and a binary body in one
 * message, so an array travels without base64 and without a second message.
 *
 * ```
 * offset 0   u32 LE  magic: "SHL1" (a whole message) or "SHLC" (one chunk, see chunking.ts)
 * offset 4   u32 LE  header length H, at most MAX_HEADER_BYTES
 * offset 8   u32 LE  body length B
 * offset 12  u32 LE  reserved, 0
 * offset 16  H bytes header, JSON in UTF-8
 *            zero padding up to a multiple of BODY_ALIGNMENT
 *            B bytes body
 * ```
 *
 * The total length must match exactly. Decoding checks every length before allocating.
 *
 * @module
 */
import type { z } from "npm:zod@4.6.7";

/** Largest header JSON in bytes. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** The body starts at a multiple of this many bytes within the message (and within a decoded body). */
export const BODY_ALIGNMENT = 8;
/** Size of the fixed prefix before the header JSON. */
export const PREFIX_BYTES = 16;

/** Magic of a whole message ("SHL1"). */
export const MAGIC_MESSAGE = 0x314c4853;
/** Magic of one chunk of a message larger than the server's `max_payload` ("SHLC"). */
export const MAGIC_CHUNK = 0x434c4853;

/** A message that does not follow the wire format; the message says which rule it broke. */
export class MessageFormatError extends Error {
  override name = "MessageFormatError";
}

/** A decoded message: the validated header and the body bytes. */
export interface Decoded<H> {
  header: H;
  /** Starts at a multiple of {@link BODY_ALIGNMENT} in its buffer; may share the input's buffer. */
  body: Uint8Array;
}

/** The message parts before header validation. */
export interface RawMessage {
  magic: number;
  header: unknown;
  body: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Offset of the body for a header of `headerBytes` bytes. */
export function bodyOffset(headerBytes: number): number {
  return alignUp(PREFIX_BYTES + headerBytes, BODY_ALIGNMENT);
}

/**
 * A message body: the bytes of one typed array, or of several laid end to end (no padding between
 * them), so a sender can join arrays without first copying them into one buffer.
 */
export type Body = ArrayBufferView | readonly ArrayBufferView[];

/**
 * Encodes `header` (JSON) and `body` (bytes of any typed array or arrays, copied once) into one
 * message. Throws a `RangeError` when the header JSON exceeds {@link MAX_HEADER_BYTES}.
 */
export function encodeMessage(
  header: object,
  body?: Body,
  magic: number = MAGIC_MESSAGE,
): Uint8Array {
  const parts = bodyParts(body);
  const bodyLength = parts.reduce((n, part) => n + part.byteLength, 0);
  const head = encodeHead(header, bodyLength, magic, bodyLength);
  let offset = head.length - bodyLength;
  for (const part of parts) {
    head.set(part, offset);
    offset += part.byteLength;
  }
  return head;
}

/**
 * The bytes of a message before its body: prefix, header JSON and padding, for a body of
 * `bodyLength` bytes that the caller sends after them (a stream writer sends a large body without
 * copying it into the message). `room` extra bytes are allocated at the end, for a body copied in.
 */
export function encodeHead(header: object, bodyLength: number, magic = MAGIC_MESSAGE, room = 0): Uint8Array {
  const headerBytes = encoder.encode(JSON.stringify(header));
  if (headerBytes.length > MAX_HEADER_BYTES) {
    throw new RangeError(
      `Cannot encode the message as its header must be at most ${MAX_HEADER_BYTES} bytes of JSON: current size is ${headerBytes.length}`,
    );
  }
  const start = bodyOffset(headerBytes.length);
  const out = new Uint8Array(start + room);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  view.setUint32(4, headerBytes.length, true);
  view.setUint32(8, bodyLength, true);
  out.set(headerBytes, PREFIX_BYTES);
  return out;
}

/** The bytes of each array of `body`, without copying. */
export function bodyParts(body: Body | undefined): Uint8Array[] {
  if (body === undefined) return [];
  return ArrayBuffer.isView(body) ? [bytesOf(body)] : body.map(bytesOf);
}

/** The bytes of `body` in one array: a view when it is one array, a copy joining several otherwise. */
export function joinBody(body: Body | undefined): Uint8Array {
  const parts = bodyParts(body);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Decodes a whole message and validates its header with `schema`. Throws a
 * {@link MessageFormatError} (with the zod error as `cause` when the header is invalid).
 *
 * The body is a view into `data` when that is aligned to {@link BODY_ALIGNMENT}, an aligned copy
 * otherwise (`msg.data` of nats.js may start at any offset).
 */
export function decodeMessage<S extends z.ZodType>(
  data: Uint8Array,
  schema: S,
): Decoded<z.output<S>> {
  const raw = decodeRaw(data);
  if (raw.magic !== MAGIC_MESSAGE) {
    throw new MessageFormatError(
      `Cannot decode the message as it is one chunk of a larger message: reassemble it with a Reassembler`,
    );
  }
  return { header: parseHeader(raw.header, schema), body: raw.body };
}

/** Validates a decoded header with `schema`, wrapping failures in a {@link MessageFormatError}. */
export function parseHeader<S extends z.ZodType>(header: unknown, schema: S): z.output<S> {
  const result = schema.safeParse(header);
  if (!result.success) {
    throw new MessageFormatError(
      `Cannot accept the message as its header does not match the expected schema: ${result.error.message}`,
      { cause: result.error },
    );
  }
  return result.data;
}

/** Splits a message (whole or chunk) into magic, parsed JSON header and aligned body. */
export function decodeRaw(data: Uint8Array): RawMessage {
  if (data.length < PREFIX_BYTES) {
    throw new MessageFormatError(
      `Cannot decode the message as it must be at least ${PREFIX_BYTES} bytes: current length is ${data.length}`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== MAGIC_MESSAGE && magic !== MAGIC_CHUNK) {
    throw new MessageFormatError(
      `Cannot decode the message as it does not start with "SHL1" or "SHLC": first word is 0x${
        magic.toString(16).padStart(8, "0")
      }`,
    );
  }
  const headerLength = view.getUint32(4, true);
  const bodyLength = view.getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new MessageFormatError(
      `Cannot decode the message as its header must be at most ${MAX_HEADER_BYTES} bytes: declared length is ${headerLength}`,
    );
  }
  const start = bodyOffset(headerLength);
  if (start + bodyLength !== data.length) {
    throw new MessageFormatError(
      `Cannot decode the message as its length must be ${
        start + bodyLength
      } (header ${headerLength}, body ${bodyLength}): current length is ${data.length}`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(data.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)));
  } catch (error) {
    throw new MessageFormatError(`Cannot decode the message as its header is not valid UTF-8 JSON`, {
      cause: error,
    });
  }
  return { magic, header, body: aligned(data.subarray(start)) };
}

/**
 * A `Float32Array` over the same bytes when `body` is 4-byte aligned, over an aligned copy
 * otherwise. Throws a `RangeError` when the length is not a multiple of 4.
 */
export function asFloat32(body: Uint8Array): Float32Array {
  if (body.byteLength % 4 !== 0) {
    throw new RangeError(
      `Cannot view the body as float32 as its length must be a multiple of 4: current length is ${body.byteLength}`,
    );
  }
  const bytes = body.byteOffset % 4 === 0 ? body : copyBytes(body);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** The bytes of a typed array or DataView, without copying. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * A copy of `bytes` at offset 0 of a new buffer. `bytes.slice()` is no substitute: on a Node
 * `Buffer` (what nats.js hands out as `msg.data`) it returns a view of the same memory.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

function aligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % BODY_ALIGNMENT === 0 ? bytes : copyBytes(bytes);
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
