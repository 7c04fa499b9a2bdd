/**
 * Writes TensorBoard event files: TFRecord-framed `Event` protobufs, `brain.Event:2` first.
 *
 * @module
 */

import { join } from "node:path";
import { EventEncoder, type EventObject, type SummaryValueObject } from "./event_proto.ts";
import { histogramValue, scalarValue } from "./summary.ts";
import { encodeTFRecord } from "./tfrecord.ts";

/** The `file_version` of the first event in every file TensorBoard reads. */
export const EVENT_FILE_VERSION = "brain.Event:2";

/** Options of {@link EventFileWriter.open}. */
export interface EventFileWriterOptions {
  /**
   * {@link EventFileWriter.shouldFlush} turns true once this long has passed since the last
   * flush with events pending (TensorFlow's `flush_millis`).
   * @default 120000
   */
  flushMillis?: number;
  /**
   * {@link EventFileWriter.shouldFlush} turns true once this many encoded bytes are pending.
   * @default 1048576
   */
  maxPendingBytes?: number;
  /** Clock in milliseconds since the epoch, for `wall_time` and file names. @default Date.now */
  now?: () => number;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * An append-only TensorBoard event file, named
 * `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>.v2` where `n` is the smallest number
 * that gives a new file in the directory.
 *
 * `add*` methods only encode and buffer; {@link flush} appends whole records, so a file never
 * ends inside a record after `flush` or `close`. If a write fails, the file is truncated back to
 * the last whole record before the error is rethrown.
 */
export class EventFileWriter implements AsyncDisposable {
  /** Full path of the event file. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #encoder = new EventEncoder();
  readonly #now: () => number;
  readonly #flushMillis: number;
  readonly #maxPendingBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #lastFlush: number;
  #committedBytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    path: string,
    file: Deno.FsFile,
    now: () => number,
    flushMillis: number,
    maxPending: number,
  ) {
    this.path = path;
    this.#file = file;
    this.#now = now;
    this.#flushMillis = flushMillis;
    this.#maxPendingBytes = maxPending;
    this.#lastFlush = now();
  }

  /**
   * Creates `dir` (recursively) and a new event file in it, and writes the `file_version` event.
   * @throws RangeError for a negative or non-finite `flushMillis` or `maxPendingBytes`.
   */
  static async open(dir: string, options: EventFileWriterOptions = {}): Promise<EventFileWriter> {
    const now = options.now ?? Date.now;
    const flushMillis = options.flushMillis ?? 120_000;
    const maxPendingBytes = options.maxPendingBytes ?? 1 << 20;
    for (
      const [name, value] of [["flushMillis", flushMillis], ["maxPendingBytes", maxPendingBytes]] as const
    ) {
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(
          `Cannot open an event file as ${name} must be a finite number >= 0: current value is ${value}`,
        );
      }
    }
    await Deno.mkdir(dir, { recursive: true });
    const stem = `events.out.tfevents.${Math.floor(now() / 1000)}.${Deno.hostname()}.${Deno.pid}`;
    for (let n = 0;; n++) {
      const path = join(dir, `${stem}.${n}.v2`);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { write: true, createNew: true });
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
      const writer = new EventFileWriter(path, file, now, flushMillis, maxPendingBytes);
      writer.addEvent({ wall_time: now() / 1000, step: 0, file_version: EVENT_FILE_VERSION });
      await writer.flush();
      return writer;
    }
  }

  /** Encoded bytes buffered and not yet written. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** True when events are pending and `maxPendingBytes` or `flushMillis` has been reached. */
  get shouldFlush(): boolean {
    if (this.#pendingBytes === 0) return false;
    return this.#pendingBytes >= this.#maxPendingBytes || this.#now() - this.#lastFlush >= this.#flushMillis;
  }

  /** Buffers one event. `wall_time` is in seconds. */
  addEvent(event: EventObject): void {
    if (this.#closed) {
      throw new Error(
        `Cannot add an event to ${this.path} as the writer is closed: open a new EventFileWriter`,
      );
    }
    const record = encodeTFRecord(this.#encoder.encode(event));
    this.#pending.push(record);
    this.#pendingBytes += record.length;
  }

  /** Buffers one `Summary` event holding `values` at `step`, stamped with the current time. */
  addSummary(values: SummaryValueObject[], step: number): void {
    this.addEvent({ wall_time: this.#now() / 1000, step, summary: { value: values } });
  }

  /** Buffers a scalar (`tf.summary.scalar`). */
  addScalar(tag: string, value: number, step: number): void {
    this.addSummary([scalarValue(tag, value)], step);
  }

  /** Buffers a histogram of `data` (`tf.summary.histogram`, 30 buckets unless given). */
  addHistogram(tag: string, data: ArrayLike<number>, step: number, bucketCount?: number): void {
    this.addSummary([histogramValue(tag, data, bucketCount)], step);
  }

  /** Appends all buffered events to the file and syncs it; flushes run one after another. */
  flush(): Promise<void> {
    const bytes = concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lastFlush = this.#now();
    const done = this.#chain.then(() => this.#append(bytes));
    this.#chain = done.catch(() => {});
    return done;
  }

  async #append(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    try {
      await writeAll(this.#file, bytes);
      await this.#file.syncData();
      this.#committedBytes += bytes.length;
    } catch (error) {
      await this.#file.truncate(this.#committedBytes).catch(() => {});
      await this.#file.seek(this.#committedBytes, Deno.SeekMode.Start).catch(() => {});
      throw new Error(`Cannot append ${bytes.length} bytes of events to ${this.path}: ${error}`, {
        cause: error,
      });
    }
  }

  /** Flushes and closes the file. Later calls return the first call's promise. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const flushed = this.flush();
    this.#closed = true;
    this.#closing = flushed.finally(() => this.#file.close());
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
