/**
 * Shoal messages on a byte stream (a data-plane socket): each frame is one wire message of
 * shared/io/nats/codec.ts (16-byte prefix with the header and body lengths, JSON header, padding,
 * body), written back to back. The prefix tells the reader how much follows, so a reader checks the
 * lengths against its limits before it allocates anything: a peer cannot make it hold more than
 * `maxBodyBytes` for one frame, and a stream that ends inside a frame is an error, not a short
 * message.
 *
 * @module
 */
import {
  type Body,
  bodyOffset,
  bodyParts,
  encodeHead,
  MAGIC_MESSAGE,
  MAX_HEADER_BYTES,
  PREFIX_BYTES,
} from "../nats/codec.ts";

/** A frame that breaks the format or a limit; the stream cannot be read further. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** One frame: the parsed JSON header and the body (at offset 0 of its own buffer, so 8-aligned). */
export interface Frame {
  header: unknown;
  body: Uint8Array;
}

/** The reading half of a stream. */
export interface ByteSource {
  read(buffer: Uint8Array): Promise<number | null>;
}

/** The writing half of a stream. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** Bytes read ahead for prefixes, headers and small bodies. */
const READ_AHEAD_BYTES = 64 * 1024;
/**
 * Bodies up to this size are copied into the frame's head and written with it in one write, unless
 * the body starts in an array of {@link float32WithHeadRoom} (the head goes before it, no copy).
 */
const JOIN_BELOW_BYTES = 64 * 1024;
/** Bytes kept free before an array of {@link float32WithHeadRoom}: a frame's head is at most this. */
const HEAD_ROOM_BYTES = 4096;
/** The buffers of {@link float32WithHeadRoom}'s arrays. */
const roomy = new WeakSet<ArrayBufferLike>();

/**
 * A float32 array with room for a frame's head right before it: a frame whose body starts with it
 * goes out in one write with its head (one wake-up of the reader, not two). The room holds the head
 * of one frame at a time: do not queue such an array on two connections at once.
 */
export function float32WithHeadRoom(length: number): Float32Array {
  const buffer = new ArrayBuffer(HEAD_ROOM_BYTES + length * 4);
  roomy.add(buffer);
  return new Float32Array(buffer, HEAD_ROOM_BYTES, length);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A body's destination that also hears how far the body arrived: `onRead(bytes)` runs after each read
 * with the bytes of the body read so far, so the reader can look at them while the rest is in transit.
 */
export interface BodySink {
  into: Uint8Array;
  onRead(bytes: number): void;
}

/** Where a frame's body is read to, chosen from its parsed header and length (see {@link FrameReader.next}). */
export type BodyDestination = (header: unknown, bodyBytes: number) => Uint8Array | BodySink | undefined;

/**
 * Receive buffers reused frame after frame, one per slot: reading a large body into memory that was
 * touched before costs a tenth of a fresh allocation's page faults and zeroing. A slot's previous
 * body is overwritten, so take a slot only once its last body is no longer read.
 */
export class BodyBuffers {
  readonly #slots: ArrayBuffer[] = [];

  /** The first `bytes` bytes of slot `slot`'s buffer (8-aligned), grown when too small. */
  take(slot: number, bytes: number): Uint8Array {
    let buffer = this.#slots[slot];
    if (!buffer || buffer.byteLength < bytes) this.#slots[slot] = buffer = new ArrayBuffer(bytes);
    return new Uint8Array(buffer, 0, bytes);
  }
}

/** Reads frames from a stream, one at a time. */
export class FrameReader {
  /** Largest body accepted; a larger one is a {@link FrameError}. Can be raised after a handshake. */
  maxBodyBytes: number;
  readonly #source: ByteSource;
  #buffer = new Uint8Array(READ_AHEAD_BYTES);
  #start = 0;
  #end = 0;
  /** Bytes read since the stream started, for error messages. */
  #offset = 0;

  constructor(source: ByteSource, maxBodyBytes: number) {
    this.#source = source;
    this.maxBodyBytes = maxBodyBytes;
  }

  /** Bytes of the frames read so far (prefixes, headers, padding and bodies). */
  get bytesRead(): number {
    return this.#offset;
  }

  /**
   * The next frame; `null` when the stream ends between frames. Throws {@link FrameError}. `bodyInto`
   * may name where the body goes once the header is known: an array of exactly the body's length that
   * the caller no longer needs (a buffer it reuses), alone or in a {@link BodySink}; otherwise the body
   * gets a buffer of its own.
   */
  async next(bodyInto?: BodyDestination): Promise<Frame | null> {
    if (!await this.#fill(PREFIX_BYTES, true)) return null;
    const { headerBytes, bodyBytes } = readPrefix(
      this.#buffer.subarray(this.#start, this.#start + PREFIX_BYTES),
      this.maxBodyBytes,
      `at byte ${this.#offset}`,
    );
    const start = bodyOffset(headerBytes);
    await this.#fill(start, false);
    let header: unknown;
    try {
      const text = decoder.decode(
        this.#buffer.subarray(this.#start + PREFIX_BYTES, this.#start + PREFIX_BYTES + headerBytes),
      );
      header = JSON.parse(text);
    } catch (error) {
      throw new FrameError(`Cannot read the frame at byte ${this.#offset} as its header is not UTF-8 JSON`, {
        cause: error,
      });
    }
    this.#consume(start);
    const destination = bodyInto?.(header, bodyBytes);
    const sink = destination instanceof Uint8Array ? { into: destination, onRead: undefined } : destination;
    const body = sink?.into.length === bodyBytes ? sink.into : new Uint8Array(bodyBytes);
    const onRead = body === sink?.into ? sink.onRead : undefined;
    const buffered = Math.min(bodyBytes, this.#end - this.#start);
    body.set(this.#buffer.subarray(this.#start, this.#start + buffered));
    this.#consume(buffered);
    if (buffered > 0) onRead?.(buffered);
    for (let got = buffered; got < bodyBytes;) {
      const n = await this.#source.read(body.subarray(got));
      if (n === null) {
        throw new FrameError(
          `Cannot read the frame's body as the stream ended after ${got} of its ${bodyBytes} bytes (truncated)`,
        );
      }
      got += n;
      this.#offset += n;
      onRead?.(got);
    }
    return { header, body };
  }

  /** Makes `bytes` bytes available at `#start`; false at a clean end (nothing buffered) when allowed. */
  async #fill(bytes: number, endAllowed: boolean): Promise<boolean> {
    if (this.#end - this.#start >= bytes) return true;
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#buffer.length < bytes) {
      const grown = new Uint8Array(bytes);
      grown.set(this.#buffer.subarray(0, this.#end));
      this.#buffer = grown;
    }
    while (this.#end < bytes) {
      const n = await this.#source.read(this.#buffer.subarray(this.#end));
      if (n === null) {
        if (endAllowed && this.#end === 0) return false;
        throw new FrameError(
          `Cannot read the frame at byte ${this.#offset} as the stream ended after ${this.#end} of its first ${bytes} bytes (truncated)`,
        );
      }
      this.#end += n;
    }
    return true;
  }

  #consume(bytes: number): void {
    this.#start += bytes;
    this.#offset += bytes;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }
}

/**
 * The lengths a frame's 16-byte prefix declares, checked before anything is allocated: the magic,
 * the header limit and `maxBodyBytes`. Throws a {@link FrameError} naming `where`.
 */
export function readPrefix(
  prefix: Uint8Array,
  maxBodyBytes: number,
  where: string,
): { headerBytes: number; bodyBytes: number } {
  const view = new DataView(prefix.buffer, prefix.byteOffset, PREFIX_BYTES);
  const magic = view.getUint32(0, true);
  const headerBytes = view.getUint32(4, true);
  const bodyBytes = view.getUint32(8, true);
  if (magic !== MAGIC_MESSAGE) {
    throw new FrameError(
      `Cannot read the frame ${where} as it does not start with "SHL1": first word is 0x${
        magic.toString(16).padStart(8, "0")
      }`,
    );
  }
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new FrameError(
      `Cannot read the frame ${where} as its header must be at most ${MAX_HEADER_BYTES} bytes: it declares ${headerBytes}`,
    );
  }
  if (bodyBytes > maxBodyBytes) {
    throw new FrameError(
      `Cannot read the frame ${where} as its body must be at most ${maxBodyBytes} bytes: it declares ${bodyBytes}`,
    );
  }
  return { headerBytes, bodyBytes };
}

/** Writes frames to a stream in the order `send` is called; a large body is written without a copy. */
export class FrameWriter {
  readonly #sink: ByteSink;
  #tail: Promise<void> = Promise.resolve();
  #failed: unknown;
  #written = 0;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** Bytes of the frames handed to the stream so far. */
  get bytesWritten(): number {
    return this.#written;
  }

  /**
   * Queues one frame; resolves once it was handed to the stream whole, rejects when the stream
   * failed (then every later frame rejects too). Do not change `body` before it resolves.
   */
  send(header: object, body?: Body): Promise<void> {
    return this.sendAll([{ header, body }]);
  }

  /**
   * Queues frames that go out together: small ones back to back in one write, so the reader wakes
   * once for all of them. Resolves, or rejects, as {@link send} does for the last of them.
   */
  sendAll(frames: readonly { header: object; body?: Body | undefined }[]): Promise<void> {
    const writes: Uint8Array[] = [];
    let bytes = 0;
    for (const { header, body } of frames) {
      const parts = bodyParts(body);
      const bodyLength = parts.reduce((n, p) => n + p.byteLength, 0);
      const join = bodyLength < JOIN_BELOW_BYTES && !hasHeadRoom(parts[0]);
      const head = encodeHead(header, bodyLength, MAGIC_MESSAGE, join ? bodyLength : 0);
      if (join) {
        let offset = head.length - bodyLength;
        for (const part of parts) {
          head.set(part, offset);
          offset += part.byteLength;
        }
      }
      writes.push(...(join ? [head] : writesOf(head, parts)));
      bytes += head.length + (join ? 0 : bodyLength);
    }
    const write = async () => {
      for (const out of joinSmall(writes)) await writeAll(this.#sink, out);
      this.#written += bytes;
    };
    const sent = this.#tail.then(() => {
      if (this.#failed !== undefined) throw this.#failed;
      return write();
    });
    this.#tail = sent.catch((error) => void (this.#failed ??= error));
    return sent;
  }
}

/** `writes` with each run of small ones (below {@link JOIN_BELOW_BYTES}) copied into one. */
function joinSmall(writes: Uint8Array[]): Uint8Array[] {
  if (writes.length < 2) return writes;
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  const flush = () => {
    if (run.length > 1) {
      const joined = new Uint8Array(run.reduce((n, w) => n + w.byteLength, 0));
      let offset = 0;
      for (const w of run) {
        joined.set(w, offset);
        offset += w.byteLength;
      }
      out.push(joined);
    } else out.push(...run);
    run = [];
  };
  for (const w of writes) {
    if (w.byteLength >= JOIN_BELOW_BYTES) {
      flush();
      out.push(w);
    } else run.push(w);
  }
  flush();
  return out;
}

/**
 * The writes of a frame's `head` and body `parts`: the head goes in the room before a first part that
 * starts a {@link float32WithHeadRoom} array (the caller joins runs of small writes).
 */
function writesOf(head: Uint8Array, parts: Uint8Array[]): Uint8Array[] {
  const writes = [head];
  const first = parts[0];
  if (first && hasHeadRoom(first) && head.length <= HEAD_ROOM_BYTES) {
    const joined = new Uint8Array(
      first.buffer,
      first.byteOffset - head.length,
      head.length + first.byteLength,
    );
    joined.set(head);
    writes[0] = joined;
    parts = parts.slice(1);
  }
  for (const part of parts) if (part.byteLength > 0) writes.push(part);
  return writes;
}

/**
 * True when `part` starts where an array of {@link float32WithHeadRoom} starts, right after its room:
 * the head goes in the room before it (a head longer than the room goes in a write of its own), not
 * with a copy. A view further into such an array has the array's own values before it, not room.
 */
function hasHeadRoom(part: Uint8Array | undefined): boolean {
  return part !== undefined && roomy.has(part.buffer) && part.byteOffset === HEAD_ROOM_BYTES;
}

/** Writes every byte of `bytes`. */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  for (let sent = 0; sent < bytes.length;) sent += await sink.write(bytes.subarray(sent));
}
