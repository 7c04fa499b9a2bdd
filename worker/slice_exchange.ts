/**
 * The worker side of the slice exchange (protocol.ts `sync`): what lets BatchNormalization normalize
 * over the whole batch while each worker computes a slice of it.
 *
 * TF.js runs a layer's forward and gradient functions synchronously, so {@link SliceExchange.gather}
 * cannot await a message. Instead this thread blocks (`Atomics.wait`) while a helper thread
 * (slice_exchange_thread.ts), with its own connection to the coordinator, sends the slice's part and
 * waits for every slice's part of that exchange, gathered by the coordinator, then wakes it. The
 * helper reaches the coordinator over its own `sync` data-plane connection, or through NATS (parts on
 * `shoal.<job>.part`, gathered parts on `shoal.<job>.sync.<version>`). When an attempt at a step fails
 * (a worker lost mid-step), the coordinator sends an abort: slices blocked on the lost worker's part
 * wake with a {@link StepAbortedError} and serve the retry.
 *
 * @module
 */
import type { SliceExchange } from "../shared/model/mod.ts";
import type { NatsAuth } from "../shared/io/nats/mod.ts";
import { BlockingUnixSocket } from "../shared/io/data_plane/blocking_unix.ts";
import {
  SharedExchangeAbortedError,
  SharedExchangeArea,
  type SharedRegion,
} from "../shared/io/data_plane/mod.ts";
import { DataFrame, decodeGathered } from "../shared/io/protocol/mod.ts";
import { stopRequested } from "./stop_flag.ts";

/** Milliseconds between checks of the stop flag while a blocking exchange waits. */
const STOP_POLL_MS = 100;

/** Control word states (index 0 of the control array); index 1 names the request they answer. */
export const WAITING = 0, DONE = 1, ABORTED = 2, FAILED = 3;

/** The step attempt was given up by the coordinator; the worker drops its slice. */
export class StepAbortedError extends Error {
  override name = "StepAbortedError";
}

/** How the helper thread reaches the coordinator. */
export type ExchangeRoute =
  | { via: "nats"; servers: string; auth?: NatsAuth }
  | { via: "direct"; addresses: string[]; secret: string; caCerts?: string[] };

/** Messages from this thread to the helper thread. */
export type ToThread =
  | {
    type: "start";
    route: ExchangeRoute;
    name: string;
    job: string;
    control: SharedArrayBuffer;
  }
  | {
    type: "gather";
    request: number;
    version: number;
    slice: number;
    slices: number;
    call: number;
    part: Float32Array;
    result: SharedArrayBuffer;
  }
  | { type: "cancel"; request: number }
  | { type: "close" };

/** Messages from the helper thread. */
export type FromThread = { type: "ready" } | { type: "failed"; error: string } | { type: "closed" };

export interface SliceExchangeOptions {
  /** How to reach the coordinator. */
  route: ExchangeRoute;
  /** Worker name (for logs and the connection name). */
  name: string;
  job: string;
  /** Longest wait for the other slices' parts before the slice fails. @default 120000 */
  timeoutMs?: number;
}

/** A running helper thread; {@link forSlice} gives the exchange of one slice of one step attempt. */
export class ThreadSliceExchange implements WorkerSliceExchange {
  readonly #thread: Worker;
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  readonly #timeoutMs: number;
  #result = new SharedArrayBuffer(4096);
  #request = 0;
  #messages: ReadableStream<FromThread>;

  private constructor(thread: Worker, timeoutMs: number) {
    this.#thread = thread;
    this.#timeoutMs = timeoutMs;
    this.#messages = new ReadableStream({
      start(controller) {
        thread.onmessage = (e: MessageEvent<FromThread>) => controller.enqueue(e.data);
        thread.onerror = (e) => {
          e.preventDefault();
          controller.enqueue({ type: "failed", error: e.message });
        };
      },
    });
  }

  /** Starts the helper thread and its connection; resolves once it listens. */
  static async start(opts: SliceExchangeOptions): Promise<ThreadSliceExchange> {
    const thread = new Worker(new URL("./slice_exchange_thread.ts", import.meta.url).href, {
      type: "module",
    });
    const exchange = new ThreadSliceExchange(thread, opts.timeoutMs ?? 120_000);
    const message: ToThread = {
      type: "start",
      route: opts.route,
      name: opts.name,
      job: opts.job,
      control: exchange.#control.buffer as SharedArrayBuffer,
    };
    thread.postMessage(message);
    const reply = await exchange.#next();
    if (reply.type !== "ready") {
      thread.terminate();
      throw new Error(
        `Worker ${opts.name} could not start its slice exchange for job ${opts.job}: ${
          reply.type === "failed" ? reply.error : reply.type
        }`,
      );
    }
    return exchange;
  }

  async #next(): Promise<FromThread> {
    const reader = this.#messages.getReader();
    try {
      const { value, done } = await reader.read();
      return done ? { type: "failed", error: "the thread ended" } : value;
    } finally {
      reader.releaseLock();
    }
  }

  /** The exchange of slice `slice` of `slices` in the step attempt that uses weights `version`. */
  forSlice(version: number, slice: number, slices: number): SliceExchange {
    let call = 0;
    return { gather: (part) => this.#gather(version, slice, slices, call++, part) };
  }

  #gather(version: number, slice: number, slices: number, call: number, part: Float32Array): Float32Array[] {
    const length = part.length;
    const bytes = slices * length * 4;
    if (this.#result.byteLength < bytes) this.#result = new SharedArrayBuffer(2 * bytes);
    const request = ++this.#request;
    Atomics.store(this.#control, 0, WAITING);
    const message: ToThread = {
      type: "gather",
      request,
      version,
      slice,
      slices,
      call,
      part,
      result: this.#result,
    };
    this.#thread.postMessage(message);
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) {
        const cancel: ToThread = { type: "cancel", request };
        this.#thread.postMessage(cancel);
        throw new Error(
          `Cannot finish slice ${slice} of weights version ${version}: the other ${
            slices - 1
          } slices' parts of exchange ${call} did not arrive within ${this.#timeoutMs / 1000} s`,
        );
      }
      Atomics.wait(this.#control, 0, WAITING, left);
      const state = Atomics.load(this.#control, 0);
      if (state === WAITING) continue;
      if (Atomics.load(this.#control, 1) !== request) {
        // A late answer to an earlier request that timed out: keep waiting for this one.
        Atomics.compareExchange(this.#control, 0, state, WAITING);
        continue;
      }
      if (state === ABORTED) {
        throw new StepAbortedError(
          `The coordinator aborted the step attempt with weights version ${version}`,
        );
      }
      if (state === FAILED) {
        throw new Error(
          `Cannot finish slice ${slice} of weights version ${version}: the slice exchange failed (see the log)`,
        );
      }
      const all = new Float32Array(this.#result, 0, slices * length);
      return Array.from({ length: slices }, (_, k) => all.slice(k * length, (k + 1) * length));
    }
  }

  /** Closes the helper thread's connection and ends it. */
  async close(): Promise<void> {
    const message: ToThread = { type: "close" };
    this.#thread.postMessage(message);
    await Promise.race([this.#next(), new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.#thread.terminate();
  }
}

/** The slice exchange of a worker, whatever carries it. */
export interface WorkerSliceExchange {
  /**
   * The exchange of slice `slice` of `slices` in the step attempt that uses weights `version`;
   * `shared`: the coordinator runs the attempt's exchange in memory its workers share.
   */
  forSlice(version: number, slice: number, slices: number, shared?: boolean): SliceExchange;
  close(): Promise<void>;
}

/**
 * The slice exchange on a Unix socket that the compute thread itself reads with blocking calls
 * (shared/io/data_plane/blocking_unix.ts): no helper thread, so an exchange costs two process
 * wake-ups. For workers on the coordinator's host.
 */
export class BlockingSliceExchange implements WorkerSliceExchange {
  readonly #socket: BlockingUnixSocket;
  readonly #timeoutMs: number;

  private constructor(socket: BlockingUnixSocket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
  }

  /** Connects to the coordinator's Unix socket at `path` as this worker's `sync` connection. */
  static connect(
    path: string,
    opts: { job: string; secret: string; name: string; timeoutMs?: number },
  ): BlockingSliceExchange {
    const socket = BlockingUnixSocket.connect(path, {
      job: opts.job,
      secret: opts.secret,
      worker: opts.name,
      role: "sync",
      maxBodyBytes: 64 * 1024 * 1024,
    });
    return new BlockingSliceExchange(socket, opts.timeoutMs ?? 120_000);
  }

  forSlice(version: number, slice: number, slices: number): SliceExchange {
    let call = 0;
    return { gather: (part) => this.#gather(version, slice, slices, call++, part) };
  }

  #gather(version: number, slice: number, slices: number, call: number, part: Float32Array): Float32Array[] {
    if (slices === 1) return [part];
    this.#socket.send({ t: "part", version, slice, slices, call }, part);
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      if (stopRequested()) {
        throw new StepAbortedError(`The worker is stopping (SIGTERM) during exchange ${call}`);
      }
      const left = deadline - performance.now();
      // Short waits, so that a stop request is seen while no part arrives.
      const frame = left > 0 ? this.#socket.receive(Math.min(left, STOP_POLL_MS)) : null;
      if (!frame && performance.now() < deadline) continue;
      if (!frame) {
        throw new Error(
          `Cannot finish slice ${slice} of weights version ${version}: the other ${
            slices - 1
          } slices' parts of exchange ${call} did not arrive within ${this.#timeoutMs / 1000} s`,
        );
      }
      const parsed = DataFrame.safeParse(frame.header);
      if (!parsed.success) continue;
      const f = parsed.data;
      // Answers to earlier attempts or exchanges are stale: this slice moved on.
      if (f.t === "abort" && f.version === version) {
        throw new StepAbortedError(
          `The coordinator aborted the step attempt with weights version ${version}`,
        );
      }
      if (f.t === "gathered" && f.version === version && f.call === call) {
        const parts = decodeGathered(frame.body, f.slices);
        if (parts.length !== slices || parts.some((p) => p.length !== part.length)) {
          throw new Error(
            `Cannot finish slice ${slice} of weights version ${version}: the gathered parts of exchange ${call} ` +
              `hold ${parts.length} parts of ${
                parts[0]?.length
              } values, this slice expects ${slices} of ${part.length}: ` +
              "the workers run different models",
          );
        }
        return parts;
      }
    }
  }

  close(): Promise<void> {
    this.#socket.close();
    return Promise.resolve();
  }
}

const SCHED = { sched_yield: { parameters: [], result: "i32" } } as const;
let sched: Deno.DynamicLibrary<typeof SCHED> | undefined;

/** `sched_yield`, so that a slice waiting for others leaves the processor to them when it is shared. */
function yieldProcessor(): void {
  sched ??= Deno.dlopen("libc.so.6", SCHED);
  sched.symbols.sched_yield();
}

/**
 * The slice exchange among workers on the coordinator's host, in memory they all map
 * (shared/io/data_plane/shared_exchange.ts), for the attempts the coordinator runs that way; other
 * attempts, and exchanges too large for the area, go through `fallback`.
 */
export class SharedMemorySliceExchange implements WorkerSliceExchange {
  readonly #area: SharedExchangeArea;
  readonly #region: SharedRegion;
  readonly #fallback: WorkerSliceExchange;
  readonly #timeoutMs: number;

  constructor(region: SharedRegion, fallback: WorkerSliceExchange, timeoutMs = 120_000) {
    this.#region = region;
    this.#area = new SharedExchangeArea(region.bytes);
    this.#fallback = fallback;
    this.#timeoutMs = timeoutMs;
  }

  /** The exchange of one slice; `shared` says the coordinator runs this attempt in shared memory. */
  forSlice(version: number, slice: number, slices: number, shared = false): SliceExchange {
    const fallback = this.#fallback.forSlice(version, slice, slices);
    if (!shared) return fallback;
    let call = 0;
    return {
      gather: (part) => {
        const c = call++;
        if (!SharedExchangeArea.fits(slices, part.length, c)) return fallback.gather(part);
        try {
          return this.#area.gather(version, c, slice, slices, part, {
            deadline: performance.now() + this.#timeoutMs,
            stopRequested,
            yieldProcessor,
          });
        } catch (error) {
          if (error instanceof SharedExchangeAbortedError) throw new StepAbortedError(error.message);
          throw error;
        }
      },
    };
  }

  async close(): Promise<void> {
    this.#region.close();
    await this.#fallback.close();
  }
}
