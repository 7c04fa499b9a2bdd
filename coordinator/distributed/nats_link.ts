/**
 * A worker reached through NATS: each request goes to its subject (`shoal.<job>.w.<worker>`) and the
 * reply comes to an inbox, chunked above `max_payload`. NATS cannot see a dead subscriber from a
 * plain request, so while a request waits the link probes the worker's `.alive` subject: a killed
 * worker's subject has no responders within ~40 ms.
 *
 * @module
 */
import { ErrorCode, NatsError } from "npm:nats@2.29.3";
import { type Body, requestLarge } from "../../shared/io/nats/mod.ts";
import { WorkReply, type WorkRequest } from "../../shared/io/protocol/mod.ts";
import {
  ConnectionInterruptedError,
  LinkLostError,
  LinkTimeoutError,
  type Reply,
  type RequestOptions,
  type WorkerLink,
} from "./links.ts";
import type { NatsControl } from "./nats_control.ts";

/**
 * Milliseconds to wait after a worker's subject had no responders before calling the worker gone: long
 * enough for this connection to see a server shutdown that closed the worker's connection first.
 */
const NO_RESPONDERS_SETTLE_MS = 200;
/** Milliseconds before the first liveness probe of a worker with a request in flight, and between the next. */
const FIRST_PROBE_MS = 50, PROBE_MS = 100;
/** Milliseconds a liveness probe waits: a busy or stopped worker does not answer, and that is no loss. */
const PROBE_TIMEOUT_MS = 200;

/** The NATS link of one worker. */
export class NatsLink implements WorkerLink {
  readonly kind = "nats" as const;
  readonly address: string;
  readonly #control: NatsControl;
  readonly #inflight = new Set<AbortController>();

  constructor(control: NatsControl, worker: string) {
    this.#control = control;
    this.address = control.subjects.worker(worker);
  }

  async request(header: WorkRequest, body: Body | undefined, opts: RequestOptions): Promise<Reply> {
    const watch = new AbortController();
    this.#inflight.add(watch);
    const watcher = this.#watchAlive(watch);
    const epoch = this.#control.epoch;
    try {
      return await requestLarge(this.#control.nc, this.address, header, body, WorkReply, {
        timeout: opts.timeoutMs,
        signal: AbortSignal.any([watch.signal, opts.signal]),
      });
    } catch (error) {
      if (opts.signal.aborted) throw error;
      const timedOut = error instanceof NatsError && error.code === ErrorCode.Timeout;
      const why = error instanceof LinkLostError
        ? error.message
        : error instanceof NatsError && error.code === ErrorCode.NoResponders
        ? "no responders on its subject: the process is gone"
        : timedOut
        ? `no reply within its step deadline of ${(opts.timeoutMs / 1000).toFixed(1)} s`
        : undefined;
      if (why === undefined) throw error;
      // A server going down closes its clients one by one: a worker's subject can lose its
      // subscriber moments before this connection drops. Wait until that drop would be seen.
      if (!timedOut) await sleep(NO_RESPONDERS_SETTLE_MS);
      if (this.#control.interruptedSince(epoch)) {
        throw new ConnectionInterruptedError(
          "the connection to the NATS server dropped while the worker worked",
        );
      }
      throw timedOut ? new LinkTimeoutError(why) : new LinkLostError(why);
    } finally {
      this.#inflight.delete(watch);
      watch.abort();
      await watcher;
    }
  }

  /**
   * Whether the worker still subscribes: `alive` when it answers, `busy` when it is subscribed but did
   * not answer in time (computing, or stopped: its step deadline decides), `gone` otherwise.
   */
  async probe(timeoutMs: number): Promise<"alive" | "busy" | "gone"> {
    try {
      await this.#control.nc.request(`${this.address}.alive`, new Uint8Array(0), { timeout: timeoutMs });
      return "alive";
    } catch (error) {
      if (error instanceof NatsError && error.code === ErrorCode.Timeout && this.#control.connected) {
        return "busy";
      }
      if (error instanceof NatsError) return "gone";
      throw error;
    }
  }

  close(reason: string): void {
    for (const watch of this.#inflight) watch.abort(new LinkLostError(reason));
  }

  /** While a request runs, checks that the worker still subscribes; aborts the request when not. */
  async #watchAlive(watch: AbortController): Promise<void> {
    for (let probe = 0; !watch.signal.aborted; probe++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, probe === 0 ? FIRST_PROBE_MS : PROBE_MS);
        watch.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      if (watch.signal.aborted) return;
      try {
        await this.#control.nc.request(`${this.address}.alive`, new Uint8Array(0), {
          timeout: PROBE_TIMEOUT_MS,
        });
      } catch (error) {
        if (error instanceof NatsError && error.code === ErrorCode.NoResponders) {
          watch.abort(
            new LinkLostError("its connection closed while computing (no responders on its subject)"),
          );
          return;
        }
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
