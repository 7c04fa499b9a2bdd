/**
 * Reading the next batch while this one computes (tf.data's `prefetch`): a reader of file-backed rows
 * with a thread of its own. Training computes synchronously on the main thread, so reads issued from
 * it could not overlap the compute; the thread reads the rows it was told are next while the main
 * thread computes, and hands their buffers over without a copy. At most `depth` batches are read
 * ahead, so memory holds at most `depth` batches besides the one computing.
 *
 * @module
 */
import { DatasetError } from "../dataset_error.ts";
import { type DatasetSpec, openSpec } from "./dataset.ts";
import type { ElementSpec, Rows, RowSource } from "./rows.ts";

/** What the main thread asks of the reader thread. */
export type ReaderRequest =
  | { kind: "open"; spec: DatasetSpec }
  | { kind: "gather"; id: number; indices: Int32Array }
  | { kind: "range"; id: number; start: number; end: number };

/** The reader thread's answer to one read. */
export type ReaderReply =
  | { id: number; rows: Rows }
  | { id: number; error: { name: string; message: string; file?: string | undefined } };

/** Batches read ahead when a dataset does not say: one, as `dataset.prefetch(1)`. */
export const DEFAULT_PREFETCH = 1;

/** The most batches a dataset may read ahead: memory holds each. */
export const MAX_PREFETCH = 2;

/** Throws a `RangeError` unless `depth` is a number of batches a dataset may read ahead. */
export function checkPrefetch(depth: number): void {
  if (!(Number.isInteger(depth) && depth >= 0 && depth <= MAX_PREFETCH)) {
    throw new RangeError(
      `Cannot prefetch ${depth} batches as the number of batches read ahead must be 0, 1 or 2 ` +
        `(each is held in memory): pass prefetch(1) to read the next batch while this one computes, or ` +
        "prefetch(0) to read each batch when it is needed",
    );
  }
}

/** The thread itself failed (not a read): what it had not read is read on the calling thread. */
class ThreadFailed extends Error {
  override name = "ThreadFailed";
}

/** One read asked of the thread ahead of need. */
interface Ahead {
  id: number;
  gather?: Int32Array;
  range?: [number, number];
  rows: Promise<Rows>;
}

function sameIndices(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The error a reader thread reported, as the same kind of error here. */
function rebuild(e: { name: string; message: string; file?: string | undefined }): Error {
  if (e.name === "DatasetError") return new DatasetError(e.file ?? "", e.message);
  if (e.name === "RangeError") return new RangeError(e.message);
  const error = new Error(e.message);
  error.name = e.name;
  return error;
}

/**
 * The rows of a file-backed dataset, read ahead in a thread: take this batch with {@link gather}
 * (which takes it off the reads ahead at once), call {@link prefetch} with the rows the next batch
 * will take, then await this batch's rows and compute. A batch that was not read ahead (the first of
 * an epoch, a retried step, a slice that moved to another worker) is read at once on the calling
 * thread, so a wrong guess costs one read, never a wrong row.
 */
export class PrefetchingReader {
  /** The rows read on the calling thread: checks the files at once, and serves what was not read ahead. */
  readonly source: RowSource;
  /** Batches read ahead at most; 0 reads every batch when it is needed, with no thread. */
  readonly depth: number;
  readonly #spec: DatasetSpec;
  #thread: Worker | undefined;
  #ahead: Ahead[] = [];
  readonly #replies = new Map<number, { resolve: (rows: Rows) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #closed = false;
  /** Batches served from reads ahead, and batches read when they were asked for. */
  readonly served = { ahead: 0, now: 0 };
  /** Set when the thread failed: from then on every batch is read when it is needed. */
  #failed = false;

  /**
   * Opens the files `spec` names here (so a missing or changed file is an error now, naming the path
   * and this host); the thread starts at the first {@link prefetch}.
   *
   * @param depth Batches read ahead at most. @default the spec's `prefetch`, else 1
   * @param source The rows of `spec` already open in this process, if any.
   */
  constructor(
    spec: DatasetSpec,
    depth: number = spec.prefetch ?? DEFAULT_PREFETCH,
    source: RowSource = openSpec(spec),
  ) {
    checkPrefetch(depth);
    this.source = source;
    this.depth = depth;
    this.#spec = spec;
  }

  get length(): number {
    return this.source.length;
  }

  get element(): ElementSpec {
    return this.source.element;
  }

  /** Starts reading the rows at `indices` (a coming batch) in the thread, unless already asked. */
  prefetch(indices: ArrayLike<number>): void {
    if (this.depth === 0 || this.#closed || this.#failed || indices.length === 0) return;
    if (this.#ahead.some((a) => a.gather && sameIndices(a.gather, indices))) return;
    const copy = Int32Array.from(indices);
    this.#ask({ kind: "gather", indices: copy }, { gather: copy });
  }

  /** Starts reading rows `start..end` in the thread, unless already asked. */
  prefetchRange(start: number, end: number): void {
    if (this.depth === 0 || this.#closed || this.#failed || end <= start) return;
    if (this.#ahead.some((a) => a.range && a.range[0] === start && a.range[1] === end)) return;
    this.#ask({ kind: "range", start, end }, { range: [start, end] });
  }

  /** The rows at `indices`: those read ahead when they were asked for, else read now. */
  gather(indices: ArrayLike<number>): Promise<Rows> {
    const ahead = this.#take((a) => a.gather !== undefined && sameIndices(a.gather, indices));
    if (ahead) return this.#orNow(ahead.rows, () => this.source.gather(indices));
    this.served.now++;
    try {
      return Promise.resolve(this.source.gather(indices));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Rows `start..end`: read ahead when they were asked for, else read now. */
  range(start: number, end: number): Promise<Rows> {
    const ahead = this.#take((a) => a.range !== undefined && a.range[0] === start && a.range[1] === end);
    if (ahead) return this.#orNow(ahead.rows, () => this.source.range(start, end));
    this.served.now++;
    try {
      return Promise.resolve(this.source.range(start, end));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Batches asked ahead and not taken yet (at most {@link depth}). */
  get pending(): number {
    return this.#ahead.length;
  }

  /** Stops the thread; reads still on their way are dropped. Reads after this are made at once. */
  close(): void {
    this.#closed = true;
    this.#thread?.terminate();
    this.#thread = undefined;
    for (const a of this.#ahead) this.#drop(a);
    this.#ahead = [];
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The rows read ahead, or read now when the thread failed before it read them. */
  async #orNow(ahead: Promise<Rows>, now: () => Rows): Promise<Rows> {
    try {
      const rows = await ahead;
      this.served.ahead++;
      return rows;
    } catch (error) {
      if (!(error instanceof ThreadFailed)) throw error;
      this.served.now++;
      return now();
    }
  }

  /** Removes and returns the read ahead `match` selects; reads asked before it are stale and dropped. */
  #take(match: (a: Ahead) => boolean): Ahead | undefined {
    const k = this.#ahead.findIndex(match);
    if (k < 0) return undefined;
    const [found] = this.#ahead.splice(k, 1);
    for (const stale of this.#ahead.splice(0, k)) this.#drop(stale);
    return found;
  }

  #drop(a: Ahead): void {
    this.#replies.delete(a.id);
    a.rows.catch(() => {});
  }

  #ask(
    request: { kind: "gather"; indices: Int32Array } | { kind: "range"; start: number; end: number },
    key: {
      gather?: Int32Array;
      range?: [number, number];
    },
  ): void {
    const thread = this.#thread ?? this.#start();
    while (this.#ahead.length >= this.depth) this.#drop(this.#ahead.shift()!);
    const id = this.#nextId++;
    const rows = new Promise<Rows>((resolve, reject) => this.#replies.set(id, { resolve, reject }));
    rows.catch(() => {}); // a read ahead that fails is reported when its rows are taken
    this.#ahead.push({ id, ...key, rows });
    thread.postMessage({ ...request, id } satisfies ReaderRequest);
  }

  #start(): Worker {
    const thread = new Worker(new URL("./reader_thread.ts", import.meta.url).href, { type: "module" });
    thread.onmessage = (event: MessageEvent<ReaderReply>) => {
      const reply = event.data;
      const waiter = this.#replies.get(reply.id);
      if (!waiter) return;
      this.#replies.delete(reply.id);
      if ("rows" in reply) waiter.resolve(reply.rows);
      else waiter.reject(rebuild(reply.error));
    };
    thread.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#failed = true;
      const error = new ThreadFailed(`The dataset reader thread failed: ${event.message}`);
      for (const waiter of this.#replies.values()) waiter.reject(error);
      this.#replies.clear();
      thread.terminate();
    };
    thread.postMessage({ kind: "open", spec: this.#spec } satisfies ReaderRequest);
    this.#thread = thread;
    return thread;
  }
}
