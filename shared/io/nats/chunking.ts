/**
 * Messages larger than the server's `max_payload`: split into numbered chunks of one transfer on
 * the sender, put back together by a {@link Reassembler} on the receiver.
 *
 * Only bodies that do not fit one message are chunked (one message per array is the fastest path
 * up to the limit). A chunk is a wire message with magic "SHLC" and the header
 * `{ id, seq, count, size, offset, header? }`: transfer id, chunk index, number of chunks, whole
 * body size, this chunk's offset in the body, and (in chunk 0 only) the message's own header.
 *
 * @module
 */
import { createInbox, ErrorCode, type Msg, type NatsConnection, NatsError } from "npm:nats@2.29.3";
import { z } from "npm:zod@4.6.7";
import {
  type Body,
  bodyOffset,
  bodyParts,
  type Decoded,
  decodeRaw,
  encodeMessage,
  joinBody,
  MAGIC_CHUNK,
  MAGIC_MESSAGE,
  MessageFormatError,
  parseHeader,
} from "./codec.ts";

/** A body larger than a receiver accepts, or more in-flight bytes than it holds. */
export class PayloadTooLargeError extends Error {
  override name = "PayloadTooLargeError";
  /** Bytes that were asked for. */
  readonly bytes: number;
  /** The limit that refused them. */
  readonly limit: number;

  constructor(message: string, bytes: number, limit: number) {
    super(message);
    this.bytes = bytes;
    this.limit = limit;
  }
}

const ChunkHeaderSchema = z.object({
  id: z.string().min(1).max(128),
  seq: z.int().nonnegative(),
  count: z.int().positive(),
  size: z.int().nonnegative(),
  offset: z.int().nonnegative(),
  header: z.unknown().optional(),
});

type ChunkHeader = z.output<typeof ChunkHeaderSchema>;

/** Room kept in each chunk for the chunk header beyond the message header itself. */
const CHUNK_HEADER_SLACK = 256;

/** Options of {@link publishLarge}. */
export interface PublishLargeOptions {
  /** Reply subject carried by every message of the transfer. */
  reply?: string;
  /** Largest message in bytes. @default nc.info.max_payload */
  maxPayload?: number;
}

/**
 * Publishes `header` + `body` (one array, or several laid end to end) as one message when it fits
 * `max_payload`, otherwise as chunks, awaiting `nc.flush()` after each chunk (back-pressure).
 * Resolves with the number of messages.
 */
export async function publishLarge(
  nc: NatsConnection,
  subject: string,
  header: object,
  body?: Body,
  options: PublishLargeOptions = {},
): Promise<number> {
  const bodyLength = bodyParts(body).reduce((n, part) => n + part.byteLength, 0);
  const maxPayload = options.maxPayload ?? serverMaxPayload(nc);
  const publishOptions = options.reply === undefined ? undefined : { reply: options.reply };
  const headerJson = JSON.stringify(header);
  if (bodyOffset(byteLength(headerJson)) + bodyLength <= maxPayload) {
    nc.publish(subject, encodeMessage(header, body), publishOptions);
    return 1;
  }
  const bytes = joinBody(body);
  const id = crypto.randomUUID();
  const chunkBytes = chunkCapacity(maxPayload, byteLength(headerJson));
  const count = Math.ceil(bytes.length / chunkBytes);
  for (let seq = 0; seq < count; seq++) {
    const offset = seq * chunkBytes;
    const chunkHeader: ChunkHeader = { id, seq, count, size: bytes.length, offset };
    if (seq === 0) chunkHeader.header = header;
    const slice = bytes.subarray(offset, Math.min(offset + chunkBytes, bytes.length));
    nc.publish(subject, encodeMessage(chunkHeader, slice, MAGIC_CHUNK), publishOptions);
    await nc.flush();
  }
  return count;
}

/** Options of {@link Reassembler}. */
export interface ReassemblerOptions {
  /** Largest body accepted, in bytes. @default 256 MiB */
  maxBodyBytes?: number;
  /** Largest sum of the sizes of incomplete transfers, in bytes. @default 512 MiB */
  maxPendingBytes?: number;
  /** An incomplete transfer with no chunk for this long is dropped. @default 30000 */
  timeoutMs?: number;
  /** Called for every transfer dropped on timeout. */
  onDrop?: (id: string, reason: string) => void;
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
}

interface Transfer {
  count: number;
  size: number;
  body: Uint8Array;
  seen: Uint8Array;
  received: number;
  receivedBytes: number;
  header?: unknown;
  hasHeader: boolean;
  lastActivity: number;
}

/** How many completed transfer ids are remembered to ignore late duplicate chunks. */
const COMPLETED_IDS_KEPT = 1024;

/**
 * Puts chunked messages back together; whole messages pass straight through. Chunks may arrive in
 * any order and more than once (duplicates are ignored). Memory is bounded by `maxBodyBytes` per
 * transfer and `maxPendingBytes` over all incomplete transfers; idle transfers time out.
 */
export class Reassembler {
  readonly maxBodyBytes: number;
  readonly maxPendingBytes: number;
  readonly timeoutMs: number;
  #transfers = new Map<string, Transfer>();
  #completed = new Set<string>();
  #pendingBytes = 0;
  #onDrop: ((id: string, reason: string) => void) | undefined;
  #now: () => number;

  constructor(options: ReassemblerOptions = {}) {
    this.maxBodyBytes = options.maxBodyBytes ?? 256 * 1024 * 1024;
    this.maxPendingBytes = options.maxPendingBytes ?? 512 * 1024 * 1024;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    for (
      const [name, value] of Object.entries({ maxBodyBytes: this.maxBodyBytes, timeoutMs: this.timeoutMs })
    ) {
      if (!(value > 0)) {
        throw new RangeError(`Cannot create a Reassembler as ${name} must be > 0: current value is ${value}`);
      }
    }
    this.#onDrop = options.onDrop;
    this.#now = options.now ?? Date.now;
  }

  /** Number of incomplete transfers. */
  get pendingTransfers(): number {
    return this.#transfers.size;
  }

  /** Sum of the sizes of incomplete transfers, in bytes. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Takes one message. Returns the decoded message (header validated with `schema`) when it is
   * whole or completes a transfer, `undefined` while a transfer is incomplete or for a duplicate.
   * Throws {@link MessageFormatError} for malformed or inconsistent chunks and
   * {@link PayloadTooLargeError} for bodies over the limits.
   */
  push<S extends z.ZodType>(data: Uint8Array, schema: S): Decoded<z.output<S>> | undefined {
    const raw = decodeRaw(data);
    if (raw.magic === MAGIC_MESSAGE) {
      if (raw.body.length > this.maxBodyBytes) throw this.#tooLarge(raw.body.length);
      return { header: parseHeader(raw.header, schema), body: raw.body };
    }
    this.sweep();
    const chunk = parseHeader(raw.header, ChunkHeaderSchema);
    if (this.#completed.has(chunk.id)) return undefined;
    const transfer = this.#transfers.get(chunk.id) ?? this.#open(chunk);
    if (!this.#place(transfer, chunk, raw.body)) return undefined;
    if (transfer.received < transfer.count) return undefined;
    this.#close(chunk.id, transfer);
    this.#rememberCompleted(chunk.id);
    if (transfer.receivedBytes !== transfer.size || !transfer.hasHeader) {
      throw new MessageFormatError(
        `Cannot reassemble transfer ${chunk.id} as its ${transfer.count} chunks hold ${transfer.receivedBytes} bytes (expected ${transfer.size})${
          transfer.hasHeader ? "" : " and chunk 0 carries no header"
        }`,
      );
    }
    return { header: parseHeader(transfer.header, schema), body: transfer.body };
  }

  /** Drops transfers idle for longer than `timeoutMs`; returns their ids. */
  sweep(): string[] {
    const now = this.#now();
    const dropped: string[] = [];
    for (const [id, transfer] of this.#transfers) {
      if (now - transfer.lastActivity <= this.timeoutMs) continue;
      this.#close(id, transfer);
      dropped.push(id);
      this.#onDrop?.(
        id,
        `no chunk for ${
          now - transfer.lastActivity
        } ms (timeout ${this.timeoutMs} ms) with ${transfer.received}/${transfer.count} chunks received`,
      );
    }
    return dropped;
  }

  #open(chunk: ChunkHeader): Transfer {
    if (chunk.size > this.maxBodyBytes) throw this.#tooLarge(chunk.size);
    if (this.#pendingBytes + chunk.size > this.maxPendingBytes) {
      throw new PayloadTooLargeError(
        `Cannot start transfer ${chunk.id} of ${chunk.size} bytes as incomplete transfers may hold at most ${this.maxPendingBytes} bytes: ${this.#pendingBytes} bytes are pending in ${this.#transfers.size} transfers`,
        this.#pendingBytes + chunk.size,
        this.maxPendingBytes,
      );
    }
    const transfer: Transfer = {
      count: chunk.count,
      size: chunk.size,
      body: new Uint8Array(chunk.size),
      seen: new Uint8Array(chunk.count),
      received: 0,
      receivedBytes: 0,
      hasHeader: false,
      lastActivity: this.#now(),
    };
    this.#transfers.set(chunk.id, transfer);
    this.#pendingBytes += chunk.size;
    return transfer;
  }

  /** Copies a chunk into its transfer; false for a duplicate. */
  #place(transfer: Transfer, chunk: ChunkHeader, body: Uint8Array): boolean {
    if (
      chunk.count !== transfer.count || chunk.size !== transfer.size || chunk.seq >= chunk.count ||
      chunk.offset + body.length > chunk.size
    ) {
      this.#close(chunk.id, transfer);
      throw new MessageFormatError(
        `Cannot reassemble transfer ${chunk.id} as chunk ${chunk.seq} (offset ${chunk.offset}, ${body.length} bytes, count ${chunk.count}, size ${chunk.size}) does not fit the transfer (count ${transfer.count}, size ${transfer.size})`,
      );
    }
    transfer.lastActivity = this.#now();
    if (transfer.seen[chunk.seq]) return false;
    transfer.seen[chunk.seq] = 1;
    transfer.received++;
    transfer.receivedBytes += body.length;
    transfer.body.set(body, chunk.offset);
    if (chunk.seq === 0 && chunk.header !== undefined) {
      transfer.header = chunk.header;
      transfer.hasHeader = true;
    }
    return true;
  }

  #close(id: string, transfer: Transfer): void {
    if (this.#transfers.delete(id)) this.#pendingBytes -= transfer.size;
  }

  #rememberCompleted(id: string): void {
    this.#completed.add(id);
    if (this.#completed.size > COMPLETED_IDS_KEPT) {
      const oldest = this.#completed.values().next().value;
      if (oldest !== undefined) this.#completed.delete(oldest);
    }
  }

  #tooLarge(bytes: number): PayloadTooLargeError {
    return new PayloadTooLargeError(
      `Cannot accept a body of ${bytes} bytes as this receiver accepts at most maxBodyBytes=${this.maxBodyBytes}: raise maxBodyBytes or send less`,
      bytes,
      this.maxBodyBytes,
    );
  }
}

/** Options of {@link requestLarge}. */
export interface RequestLargeOptions extends Omit<ReassemblerOptions, "now"> {
  /** Milliseconds to wait for the whole reply. @default 10000 */
  timeout?: number;
  /** Largest message in bytes. @default nc.info.max_payload */
  maxPayload?: number;
  signal?: AbortSignal;
}

/**
 * Sends a request of any size (chunked when needed) and waits for a reply of any size, validated
 * with `schema`. Rejects with the nats.js `NatsError` of code `ErrorCode.NoResponders` ("503") when
 * nobody subscribes to `subject`, `ErrorCode.Timeout` after `timeout` ms, or the signal's reason.
 */
export async function requestLarge<S extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  header: object,
  body: Body | undefined,
  schema: S,
  options: RequestLargeOptions = {},
): Promise<Decoded<z.output<S>>> {
  const { timeout = 10_000, signal } = options;
  signal?.throwIfAborted();
  const reassembler = new Reassembler(options);
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  let failure: unknown;
  const fail = (error: unknown) => {
    failure ??= error;
    sub.unsubscribe();
  };
  const timer = setTimeout(() => fail(NatsError.errorForCode(ErrorCode.Timeout)), timeout);
  const onAbort = () => fail(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const publishing = publishLarge(nc, subject, header, body, {
      reply: inbox,
      ...(options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload }),
    }).catch(fail);
    for await (const msg of sub) {
      if (isNoResponders(msg)) throw NatsError.errorForCode(ErrorCode.NoResponders);
      const reply = reassembler.push(msg.data, schema);
      if (reply) return reply;
    }
    await publishing;
    throw failure ?? new Error(`Cannot complete the request on ${subject} as the reply subscription closed`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}

/** True for the server's "no responders" status message (503, empty body). */
export function isNoResponders(msg: Msg): boolean {
  return msg.headers?.code === 503 && msg.data.length === 0;
}

function serverMaxPayload(nc: NatsConnection): number {
  const max = nc.info?.max_payload;
  if (!max) {
    throw new Error(
      "Cannot read max_payload as the connection has no server info: connect first or pass maxPayload",
    );
  }
  return max;
}

function chunkCapacity(maxPayload: number, headerBytes: number): number {
  const capacity = Math.floor((maxPayload - bodyOffset(headerBytes + CHUNK_HEADER_SLACK)) / 8) * 8;
  if (capacity <= 0) {
    throw new RangeError(
      `Cannot chunk a message with a ${headerBytes}-byte header into messages of at most ${maxPayload} bytes: raise max_payload or shrink the header`,
    );
  }
  return capacity;
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}
