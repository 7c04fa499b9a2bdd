/**
 * The coordinator's side of the slice exchange (BatchNormalization over the whole batch): every slice
 * of a step attempt sends its part of each exchange here, over its `sync` data-plane connection or on
 * NATS (`shoal.<job>.part`); once all parts of an exchange are in, each slice gets all of them in
 * slice order (`gathered`), on the way its worker is reached. An attempt that fails is aborted here,
 * which wakes the slices still waiting.
 *
 * A NATS part can be lost in a reconnect: its slice sends it again until the gathered parts arrive,
 * and a part of an exchange already complete is answered with the gathered parts once more.
 *
 * @module
 */
import { decodeMessage, encodeMessage, serve, type Service } from "../../shared/io/nats/mod.ts";
import { type FrameChannel, MAX_SLICES, type SharedExchangeArea } from "../../shared/io/data_plane/mod.ts";
import { DataFrame, encodeGathered, SyncHeader } from "../../shared/io/protocol/mod.ts";
import type { PoolEvents } from "./events.ts";
import type { NatsControl } from "./nats_control.ts";

/** One exchange (`call`) of one attempt: the parts in, and the gathered result once complete. */
interface Exchange {
  parts: (Float32Array | undefined)[];
  gathered?: Float32Array;
}

/** The workers of one attempt, by slice. */
interface Attempt {
  version: number;
  workers: readonly string[];
  exchanges: Map<number, Exchange>;
  aborted?: string;
}

/** Gathers slice-exchange parts and hands them back; see the module doc. */
export class SyncHub {
  readonly #control: NatsControl;
  readonly #events: PoolEvents;
  readonly #channels = new Map<string, FrameChannel>();
  #attempt: Attempt | undefined;
  #service: Service | undefined;
  #area: SharedExchangeArea | undefined;

  constructor(control: NatsControl, events: PoolEvents) {
    this.#control = control;
    this.#events = events;
  }

  /** Listens for parts on NATS. */
  start(): void {
    this.#service = serve(this.#control.nc, this.#control.subjects.part, (msg) => {
      const { header, body } = decodeMessage(msg.data, SyncHeader);
      if (header.kind !== "part" || header.job !== this.#control.job) return;
      this.#onPart(header.worker, header, new Float32Array(body.slice().buffer), "nats");
    }, {
      onError: (error) => this.#events.emit({ type: "warning", message: `slice exchange: ${error}` }),
    });
  }

  /** Serves a worker's `sync` connection until it ends (a newer one replaces it). */
  addChannel(worker: string, channel: FrameChannel): void {
    this.#channels.get(worker)?.close("replaced by a newer connection");
    this.#channels.set(worker, channel);
    void (async () => {
      for (;;) {
        const frame = await channel.next();
        if (!frame) break;
        const parsed = DataFrame.safeParse(frame.header);
        if (!parsed.success || parsed.data.t !== "part") {
          channel.close("the worker sent a frame that is not a slice-exchange part");
          break;
        }
        this.#onPart(
          worker,
          parsed.data,
          new Float32Array(frame.body.buffer, 0, frame.body.byteLength / 4),
          "direct",
        );
      }
      if (this.#channels.get(worker) === channel) this.#channels.delete(worker);
    })();
  }

  /** True when `worker` has a `sync` connection. */
  hasChannel(worker: string): boolean {
    return this.#channels.has(worker);
  }

  /**
   * The slice-exchange area of the workers on this host: attempts whose workers all map it exchange
   * there, without this hub (shared/io/data_plane/shared_exchange.ts).
   */
  useSharedArea(area: SharedExchangeArea): void {
    area.reset();
    this.#area = area;
  }

  /**
   * Starts attempt `version` with `workers[k]` computing slice k; earlier attempts are forgotten.
   * Returns true when the attempt exchanges in the shared area (`sharedArea`: all its workers map it).
   */
  begin(version: number, workers: readonly string[], sharedArea = false): boolean {
    this.#attempt = { version, workers, exchanges: new Map() };
    return sharedArea && this.#area !== undefined && workers.length <= MAX_SLICES;
  }

  /** Wakes every slice of attempt `version` still waiting, with the reason. */
  abort(version: number, reason: string): void {
    this.#area?.abortThrough(version);
    const attempt = this.#attempt;
    if (attempt?.version === version) attempt.aborted = reason;
    const workers = attempt?.version === version ? attempt.workers : [...this.#channels.keys()];
    this.#send(workers, { t: "abort", version, reason });
  }

  /** Stops listening on NATS (the connections close with the workers' links). */
  async close(): Promise<void> {
    await this.#service?.stop();
    for (const channel of this.#channels.values()) channel.close("the job ended");
    this.#channels.clear();
  }

  #onPart(
    worker: string,
    part: { version: number; slice: number; slices: number; call: number },
    values: Float32Array,
    via: "direct" | "nats",
  ): void {
    const attempt = this.#attempt;
    if (!attempt || attempt.version !== part.version) return; // an attempt given up or not begun
    if (attempt.aborted !== undefined) {
      this.#send([worker], { t: "abort", version: part.version, reason: attempt.aborted });
      return;
    }
    if (part.slices !== attempt.workers.length || attempt.workers[part.slice] !== worker) {
      this.#events.emit({
        type: "warning",
        message:
          `ignored a slice-exchange part of worker ${worker} (${via}) for slice ${part.slice} of ${part.slices} ` +
          `in attempt ${part.version}: that slice belongs to ${attempt.workers[part.slice] ?? "nobody"}`,
      });
      return;
    }
    const exchange = attempt.exchanges.get(part.call) ?? { parts: [] };
    attempt.exchanges.set(part.call, exchange);
    if (exchange.gathered) {
      // A re-sent part: its slice missed the gathered parts (a NATS message lost in a reconnect).
      this.#sendGathered(attempt, part.call, exchange.gathered, [worker]);
      return;
    }
    exchange.parts[part.slice] = values;
    for (let k = 0; k < attempt.workers.length; k++) if (!exchange.parts[k]) return;
    let gathered: Float32Array;
    try {
      gathered = encodeGathered(exchange.parts as Float32Array[]);
    } catch (error) {
      this.abort(attempt.version, error instanceof Error ? error.message : String(error));
      return;
    }
    exchange.gathered = gathered;
    exchange.parts = [];
    this.#sendGathered(attempt, part.call, gathered, attempt.workers);
  }

  #sendGathered(attempt: Attempt, call: number, gathered: Float32Array, to: readonly string[]): void {
    this.#send(
      to,
      { t: "gathered", version: attempt.version, slices: attempt.workers.length, call },
      gathered,
    );
  }

  /**
   * Sends an abort or the gathered parts as a frame to the workers with a `sync` connection, and
   * publishes the same message on NATS (as a {@link SyncHeader}) for the others.
   */
  #send(
    workers: readonly string[],
    frame: Extract<DataFrame, { t: "abort" | "gathered" }>,
    body?: Float32Array,
  ): void {
    let nats = false;
    for (const worker of workers) {
      const channel = this.#channels.get(worker);
      if (channel) void channel.send(frame, body).catch(() => {});
      else nats = true;
    }
    if (!nats || !this.#control.connected) return;
    const { t: kind, ...rest } = frame;
    const header: SyncHeader = { kind, job: this.#control.job, ...rest } as SyncHeader;
    try {
      this.#control.nc.publish(this.#control.subjects.sync(frame.version), encodeMessage(header, body));
    } catch (error) {
      this.#events.emit({ type: "warning", message: `could not publish the slice exchange: ${error}` });
    }
  }
}
