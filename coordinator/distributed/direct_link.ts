/**
 * A worker reached over the data plane: its authenticated `work` connection carries weights and
 * requests out and replies back, each reply naming its request's id. A closed connection is seen at
 * once (a killed worker's socket is closed by its kernel), so no liveness probes are needed.
 *
 * @module
 */
import type { Body } from "../../shared/io/nats/mod.ts";
import {
  BodyBuffers,
  type BodySink,
  type FrameChannel,
  type SharedRegion,
} from "../../shared/io/data_plane/mod.ts";
import { nonFiniteProbe } from "../../shared/model/vector.ts";
import {
  DataFrame,
  type RingPeer,
  type WeightsHeader,
  type WorkRequest,
} from "../../shared/io/protocol/mod.ts";
import {
  LinkLostError,
  LinkTimeoutError,
  type Reply,
  type RequestOptions,
  type WorkerLink,
} from "./links.ts";

/** Milliseconds a dropped worker's `leave` frame gets before its connection closes. */
const LEAVE_GRACE_MS = 100;
/** Values per weights part sent down the chain of a ring (64 KiB of float32): the chain's pipeline fills in N of them. */
export const CHAIN_PART_FLOATS = 16 * 1024;

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: unknown) => void;
  /**
   * The reply slot of a train request: a slot of the worker's region when it shares memory, else
   * where the reply's body is read to on this side (see {@link DirectLink.#bodies}).
   */
  slot: number | undefined;
}

/** The data-plane link of one worker. */
export class DirectLink implements WorkerLink {
  readonly kind = "direct" as const;
  readonly address: string;
  readonly #channel: FrameChannel;
  readonly #pending = new Map<number, Pending>();
  /** The worker's gradient region (two slots), when it shares memory with the coordinator. */
  readonly #grads: SharedRegion | undefined;
  /**
   * Receive buffers of train replies that come on the socket, one per slot: a slot is taken again only
   * by a later step's request, which the coordinator sends once it is done with this step's gradients.
   */
  readonly #bodies = new BodyBuffers();
  /** Train requests sent in the latest step: the first two get a reply slot each. */
  #slots = { step: -1, used: 0 };
  #nextId = 0;
  /**
   * The float32 gradient of the train reply being read, checked for NaN and infinities part by part
   * as it arrives (the check then costs no time of its own: the rest is still in transit).
   */
  #arriving: { id: number; grads: Float32Array; checked: number; probe: number } | undefined;
  /** The frame naming the shared-memory slot of the latest weights, until a request takes it along. */
  #heldWeights: WeightsHeader & { t: "weights"; shm: number } | undefined;
  /** Probes waiting for their pong, by id. */
  readonly #probes = new Map<number, () => void>();

  /** True when the worker maps the slice-exchange area of this host (shared_exchange.ts). */
  readonly sharesExchange: boolean;

  /**
   * Serves `channel`'s replies until it ends; `onEnded` hears why it ended. With `shared.grads` (the
   * worker's region, mapped here) the worker's train replies carry their bodies there.
   */
  constructor(
    channel: FrameChannel,
    address: string,
    onEnded: (reason: string) => void,
    shared?: { grads: SharedRegion; exchange: boolean },
  ) {
    this.#channel = channel;
    this.address = address;
    this.#grads = shared?.grads;
    this.sharesExchange = shared?.exchange ?? false;
    void this.#readReplies();
    void channel.ended.then((error) => {
      this.#grads?.close();
      const lost = new LinkLostError(
        `its data connection ended: ${error.message.replace(/^.*?ended: /, "")}`,
      );
      for (const pending of this.#pending.values()) pending.reject(lost);
      this.#pending.clear();
      onEnded(lost.message);
    });
  }

  /** True when weights and train replies travel through shared memory. */
  get sharesMemory(): boolean {
    return this.#grads !== undefined;
  }

  /** True once the connection ended. */
  get isClosed(): boolean {
    return this.#channel.isClosed;
  }

  async #readReplies(): Promise<void> {
    for (;;) {
      const frame = await this.#channel.next((header, bytes) => this.#bodyInto(header, bytes));
      if (!frame) return;
      const parsed = DataFrame.safeParse(frame.header);
      if (parsed.success && parsed.data.t === "pong") {
        this.#probes.get(parsed.data.id)?.();
        continue;
      }
      if (!parsed.success || parsed.data.t !== "rep") {
        this.#channel.close(
          `the worker sent a frame that is not a reply: ${JSON.stringify(frame.header).slice(0, 200)}`,
        );
        return;
      }
      const rep = parsed.data;
      const pending = this.#pending.get(rep.id);
      let body = frame.body;
      if (rep.shmBytes !== undefined) {
        const region = this.#grads;
        const slotBytes = (region?.bytes.byteLength ?? 0) / 2;
        if (!region || rep.shmSlot === undefined || rep.shmBytes > slotBytes) {
          this.#channel.close(
            `the worker's reply names ${rep.shmBytes} bytes in slot ${rep.shmSlot} of shared memory it does not have`,
          );
          return;
        }
        // A reply whose request timed out or was aborted is dropped: the slot may be in use again.
        if (pending?.slot !== rep.shmSlot) continue;
        // A view, no copy: the worker writes this slot again only for a later request, which the
        // coordinator sends after it is done with this step's gradients.
        body = region.bytes.subarray(rep.shmSlot * slotBytes, rep.shmSlot * slotBytes + rep.shmBytes);
      }
      const arriving = this.#arriving;
      this.#arriving = undefined;
      // Checked in flight here, unless the worker vouched for it (step_runner.ts reads its word).
      const gradsFinite = rep.shmBytes === undefined && arriving?.id === rep.id &&
        arriving.checked === arriving.grads.length && arriving.probe === 0;
      // A reply whose request timed out or was aborted is dropped.
      pending?.resolve({
        header: rep.rep,
        body,
        shared: rep.shmBytes !== undefined,
        ...(gradsFinite ? { gradsFinite } : {}),
      });
    }
  }

  /**
   * Where a reply's body is read to: its request's receive buffer, for a train reply on the socket,
   * whose float32 gradient is checked as it arrives unless the worker found it finite.
   */
  #bodyInto(header: unknown, bytes: number): Uint8Array | BodySink | undefined {
    this.#arriving = undefined;
    if (this.#grads) return undefined;
    const h = header as {
      t?: unknown;
      id?: unknown;
      rep?: { encoding?: unknown; gradLength?: unknown; gradsFinite?: unknown };
    };
    const id = h.t === "rep" && typeof h.id === "number" ? h.id : undefined;
    const slot = id === undefined ? undefined : this.#pending.get(id)?.slot;
    if (id === undefined || slot === undefined) return undefined;
    const into = this.#bodies.take(slot, bytes);
    const gradLength = h.rep?.encoding === "f32" ? Number(h.rep.gradLength) : 0;
    if (
      !(Number.isInteger(gradLength) && gradLength > 0 && gradLength * 4 <= bytes) ||
      h.rep?.gradsFinite === true
    ) {
      return into;
    }
    const arriving = { id, grads: new Float32Array(into.buffer, 0, gradLength), checked: 0, probe: 0 };
    this.#arriving = arriving;
    return {
      into,
      onRead: (read) => {
        const end = Math.min(arriving.grads.length, read >>> 2);
        if (end <= arriving.checked) return;
        arriving.probe += nonFiniteProbe(arriving.grads.subarray(arriving.checked, end));
        arriving.checked = end;
      },
    };
  }

  request(header: WorkRequest, body: Body | undefined, opts: RequestOptions): Promise<Reply> {
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    const timer = setTimeout(
      () =>
        reject(
          new LinkTimeoutError(
            `no reply within its step deadline of ${(opts.timeoutMs / 1000).toFixed(1)} s`,
          ),
        ),
      opts.timeoutMs,
    );
    const onAbort = () => reject(opts.signal.reason);
    opts.signal.addEventListener("abort", onAbort, { once: true });
    if (opts.signal.aborted) onAbort();
    const slot = this.#slotFor(header);
    this.#pending.set(id, { resolve, reject, slot });
    const shmSlot = this.#grads && slot !== undefined ? { shmSlot: slot } : {};
    const frame = { header: { t: "req", id, req: header, ...shmSlot }, body };
    // Held weights go with the first request that names their version; a request for a later one
    // means they were replaced (by weights sent down a ring's chain).
    const version = "version" in header ? header.version : undefined;
    const held = this.#heldWeights;
    if (held && version !== undefined && version >= held.version) this.#heldWeights = undefined;
    this.#channel.sendAll(held && held.version === version ? [{ header: held }, frame] : [frame])
      .catch((
        error,
      ) => reject(new LinkLostError(error.message)));
    return promise.finally(() => {
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
      this.#pending.delete(id);
    });
  }

  /**
   * The reply slot of a train request: the first two requests of a step get one each; a third of the
   * same step (a worker recomputing others' slices) gets a body of its own, on the socket.
   */
  #slotFor(header: WorkRequest): number | undefined {
    if (header.kind !== "train") return undefined;
    if (this.#slots.step !== header.step) this.#slots = { step: header.step, used: 0 };
    const slot = this.#slots.used++;
    return slot < 2 ? slot : undefined;
  }

  async sendWeights(header: WeightsHeader, body: Body, slot?: number): Promise<void> {
    if (this.#grads && slot !== undefined) {
      // Only a slot's name: it goes out with the next request in one write, so the worker wakes once.
      this.#heldWeights = { t: "weights", ...header, shm: slot };
      return;
    }
    this.#heldWeights = undefined;
    await this.#channel.send({ t: "weights", ...header }, body);
  }

  /** Bytes read and written on the worker's connection so far. */
  get traffic(): { read: number; written: number } {
    return this.#channel.traffic;
  }

  /**
   * Sends weights to the first worker of a ring's chain in parts of {@link CHAIN_PART_FLOATS}
   * values; the first part names the chain, down which each worker forwards them.
   */
  async sendChain(header: WeightsHeader, params: Float32Array, state: Float32Array, chain: RingPeer[]) {
    const total = params.length + state.length;
    for (let offset = 0; offset < total || offset === 0; offset += CHAIN_PART_FLOATS) {
      const end = Math.min(total, offset + CHAIN_PART_FLOATS);
      const parts = [
        ...(offset < params.length ? [params.subarray(offset, Math.min(end, params.length))] : []),
        ...(end > params.length
          ? [state.subarray(Math.max(0, offset - params.length), end - params.length)]
          : []),
      ];
      await this.#channel.send({ t: "wpart", ...header, offset, ...(offset === 0 ? { chain } : {}) }, parts);
      if (end >= total) break;
    }
  }

  /** Tells the worker to give up attempt `version` of the ring (its waits end). */
  abortRing(version: number, reason: string): void {
    void this.#channel.send({ t: "abort", version, reason }).catch(() => {});
  }

  /** True when the worker answers a probe within `timeoutMs` (a stopped worker does not). */
  async probe(timeoutMs: number): Promise<boolean> {
    const id = this.#nextId++;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.#probes.set(id, () => resolve(true));
    const timer = setTimeout(() => resolve(false), timeoutMs);
    void this.#channel.ended.then(() => resolve(false));
    this.#channel.send({ t: "ping", id }).catch(() => resolve(false));
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
      this.#probes.delete(id);
    }
  }

  close(reason: string, ended = false): void {
    if (this.#channel.isClosed) return;
    // The worker leaves the job on this frame, or on the closed connection: a stopped worker does
    // not read, so the frame gets a moment, not a promise.
    void this.#channel.send({ t: "leave", reason, ended }).catch(() => {});
    setTimeout(() => this.#channel.close(reason), LEAVE_GRACE_MS);
  }
}
