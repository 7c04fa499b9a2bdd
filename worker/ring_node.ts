/**
 * A worker's place in the ring (shared/allreduce/ring.ts): it listens for its previous neighbour on
 * the data plane (a Unix socket beside the coordinator's, a TCP port where the coordinator offers
 * one; the same handshake and job secret, role `ring`), dials its next neighbour, and runs the
 * reduce-scatter of one attempt over these two connections. Weights parts (`wpart`) arriving on a ring
 * connection go to the job's handler, which forwards them down the chain.
 *
 * Memory: beside the model and its gradient a worker holds two chunks per ring connection, reused step
 * after step: a connection is read one chunk ahead at most (its reader waits until the chunk was
 * taken), into the one of its two chunk buffers that does not hold the chunk in hand (added into the
 * gradient), and a weights part is read the same way (the handler copies it at once). Terms and partial
 * sums are written over the gradient in place (each of its slices is read once) and sent from there.
 * Nothing of a chunk's size is allocated per step or per chunk: garbage would pile up in V8's external
 * memory before a collection frees it, tens of megabytes on a megabyte-sized shard.
 *
 * With a data plane over TLS the ring's TCP listener speaks TLS too (`tls://` addresses, the worker's
 * own certificate), and neighbours are dialed over TLS, verified with the CA the worker trusts for the
 * coordinator. A ring node dials only addresses of its own kind (besides Unix sockets, which stay on
 * the host): a plain node never reaches a TLS neighbour, nor a TLS node a plain one, so the ring's
 * traffic between hosts is encrypted whenever the data plane's is.
 *
 * Frames of an attempt name its weights version: frames of an older attempt are dropped on arrival,
 * and the coordinator's `abort` of an attempt ends its waits (a neighbour lost or stopped mid-ring),
 * so the worker takes the next attempt with a new ring.
 *
 * @module
 */
import {
  type DataListener,
  DataPlaneUnreachableError,
  dialDataPlane,
  type FrameChannel,
  type ListenAddress,
  listenDataPlane,
  ringDials,
} from "../shared/io/data_plane/mod.ts";
import { DataFrame, type RingPeer } from "../shared/io/protocol/mod.ts";
import {
  addTermInPlace,
  chunkCount,
  firstTermInPlace,
  receivedShard,
  RING_CHUNK_FLOATS,
  sentShard,
  shardBounds,
} from "../shared/allreduce/mod.ts";
import { asFloat32 } from "../shared/io/nats/mod.ts";

/** TLS of a ring node: its listener's PEM certificate and key, and the CAs its neighbours' certificates chain to. */
export interface RingTls {
  cert: string;
  key: string;
  /** PEM CA certificates that may sign a neighbour's certificate. @default the system's roots */
  caCerts?: string[];
}

/** Options of {@link RingNode.start}. */
export interface RingNodeOptions {
  job: string;
  secret: string;
  /** This worker's name (its neighbours dial it under it). */
  name: string;
  /** Listen on a Unix socket (workers on this host dial it first). */
  unix: boolean;
  /** TCP address to listen on, and the host neighbours dial; none for a Unix socket only. */
  tcp?: { listen: ListenAddress; advertise?: string };
  /** The TCP listener speaks TLS and neighbours are dialed over TLS only (`tls://` addresses). */
  tls?: RingTls;
  /** Largest frame body read from a neighbour. */
  maxBodyBytes: number;
  /** Values per chunk. @default RING_CHUNK_FLOATS */
  chunkFloats?: number;
  /**
   * A weights part from the previous neighbour (the chain of weights); its body is overwritten by the
   * next part, so the handler copies what it keeps.
   */
  onWeightsPart: (header: Extract<DataFrame, { t: "wpart" }>, body: Uint8Array) => void;
  /** A connection problem worth a line in the worker's log. */
  onWarning?: (message: string) => void;
}

/** What one rank contributes to and gets from one reduce-scatter. */
export interface ReduceScatterRequest {
  /** The attempt (weights version). */
  version: number;
  /** The ring, in rank order. */
  ring: readonly RingPeer[];
  /** This worker's rank in `ring`. */
  rank: number;
  /** This worker's whole gradient; the reduce-scatter writes over it (see {@link ReducedShard}). */
  grads: Float32Array;
  /** This worker's share of the batch: its rows ÷ the batch's rows. */
  weight: number;
}

/**
 * The reduced values `[start, end)` of the gradient this rank holds after a reduce-scatter. `values`
 * is a view of the request's `grads`, whose other slices hold partial sums: send or copy them before
 * the gradient's array is used again.
 */
export interface ReducedShard {
  start: number;
  end: number;
  values: Float32Array;
}

/** The ring's wait ended: the attempt was aborted, or a neighbour's connection ended. */
export class RingAbortedError extends Error {
  override name = "RingAbortedError";
}

/** No connection to a ring neighbour could be made at any of its addresses (a blocked ring port). */
export class RingUnreachableError extends Error {
  override name = "RingUnreachableError";
  constructor(
    /** The neighbour that could not be reached. */
    readonly peer: RingPeer,
    /** Why, for each of its addresses. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot reach ring neighbour ${peer.name} at ${peer.addresses.join(", ")}: ${reason}`,
      options,
    );
  }
}

/**
 * Milliseconds to reach one address of a ring neighbour and finish the handshake: a neighbour's port
 * answers within milliseconds on any network a job runs on, and a blocked one (packets dropped) must
 * be reported well within the step's deadline.
 */
export const RING_DIAL_TIMEOUT_MS = 1000;

interface Chunk {
  header: Extract<DataFrame, { t: "rchunk" }>;
  values: Float32Array;
  /** The connection's chunk buffer it was read into. */
  slot: number;
}

interface Incoming {
  channel: FrameChannel;
  /** At most one chunk: the connection is read on only once it was taken (back-pressure). */
  chunks: Chunk[];
  /** Wakes the connection's reader once its chunk was taken or dropped. */
  taken: (() => void) | undefined;
  /** Two chunk buffers, made at the first frame that needs one. */
  slots: Float32Array[];
  /** The buffer of the chunk taken last (being added into the gradient): the reader reads into the other. */
  held: number;
}

/** See the module doc. */
export class RingNode {
  readonly #opts: RingNodeOptions;
  readonly #listener: DataListener;
  readonly #chunkFloats: number;
  /** The connection from each neighbour that dialed this worker, and its chunks not yet taken. */
  readonly #incoming = new Map<string, Incoming>();
  /** The connection to each neighbour this worker dialed, with the tail of its ordered sends. */
  readonly #outgoing = new Map<
    string,
    { key: string; channel: Promise<FrameChannel>; tail: Promise<void> }
  >();
  /** Wakes the reduce-scatter waiting for a chunk (or for an abort). */
  #wake: (() => void) | undefined;
  /** Attempts up to this version were aborted; the latest abort's reason. */
  #aborted = { version: -1, reason: "" };
  /** Frames of attempts older than this are dropped on arrival. */
  #oldest = 0;
  #closed = false;

  private constructor(opts: RingNodeOptions, listener: DataListener) {
    this.#opts = opts;
    this.#listener = listener;
    this.#chunkFloats = opts.chunkFloats ?? RING_CHUNK_FLOATS;
  }

  /** Starts listening; resolves once neighbours can dial {@link addresses}. */
  static async start(opts: RingNodeOptions): Promise<RingNode> {
    // Connections admitted before the node exists wait for it.
    const made: { node?: RingNode } = {};
    const pending: [FrameChannel, string][] = [];
    const listener = await listenDataPlane({
      job: opts.job,
      secret: opts.secret,
      unix: opts.unix,
      ...(opts.tcp ? { listen: opts.tcp.listen } : {}),
      ...(opts.tcp?.advertise !== undefined ? { advertise: opts.tcp.advertise } : {}),
      ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
      fix: opts.tls
        ? "Pick another --ring-listen HOST:PORT, or check --ring-tls-cert and --ring-tls-key"
        : "Pick another --ring-listen HOST:PORT",
      maxBodyBytes: opts.maxBodyBytes,
      onChannel: (channel, admitted) => {
        if (admitted.role !== "ring") {
          return channel.close(`a ${admitted.role} connection is no ring connection`);
        }
        if (made.node) made.node.#accept(channel, admitted.worker);
        else pending.push([channel, admitted.worker]);
      },
      onRefused: (peer, reason) => opts.onWarning?.(`refused a ring connection from ${peer}: ${reason}`),
    });
    const node = made.node = new RingNode(opts, listener);
    for (const [channel, worker] of pending) node.#accept(channel, worker);
    return node;
  }

  /** Where neighbours dial this worker, in order. */
  get addresses(): readonly string[] {
    return this.#listener.addresses;
  }

  #accept(channel: FrameChannel, from: string): void {
    const replaced = this.#incoming.get(from);
    replaced?.channel.close("replaced by a newer ring connection");
    replaced?.taken?.();
    const incoming: Incoming = { channel, chunks: [], taken: undefined, slots: [], held: -1 };
    this.#incoming.set(from, incoming);
    void this.#read(incoming, from);
  }

  async #read(incoming: Incoming, from: string): Promise<void> {
    const { channel } = incoming;
    // Every frame (a chunk, or a weights part the handler copies at once) is read into the buffer not
    // holding the chunk in hand; nothing else is read until the chunk read was taken or dropped.
    let slot = 0;
    const into = (_header: unknown, bytes: number) => {
      slot = incoming.held === 0 ? 1 : 0;
      return this.#slotBytes(incoming, slot, bytes);
    };
    for (;;) {
      const frame = await channel.next(into);
      if (!frame) break;
      const parsed = DataFrame.safeParse(frame.header);
      if (!parsed.success || (parsed.data.t !== "rchunk" && parsed.data.t !== "wpart")) {
        channel.close(`worker ${from} sent a frame that is no ring frame`);
        break;
      }
      const f = parsed.data;
      if (f.t === "wpart") {
        try {
          this.#opts.onWeightsPart(f, frame.body);
        } catch (error) {
          this.#opts.onWarning?.(`weights part from ${from}: ${reasonOf(error)}`);
        }
        continue;
      }
      if (f.to !== this.#opts.name) {
        channel.close(`worker ${from} sent a chunk meant for ${f.to}`);
        break;
      }
      if (f.version < this.#oldest || f.version <= this.#aborted.version) continue;
      incoming.chunks.push({ header: f, values: asFloat32(frame.body), slot });
      this.#wake?.();
      while (incoming.chunks.length > 0 && !channel.isClosed) {
        await new Promise<void>((resolve) => incoming.taken = resolve);
      }
    }
    this.#wake?.();
  }

  /** `bytes` bytes of chunk buffer `slot` of a connection, made or grown when too small. */
  #slotBytes(incoming: Incoming, slot: number, bytes: number): Uint8Array {
    let buffer = incoming.slots[slot];
    if (!buffer || buffer.byteLength < bytes) {
      buffer = incoming.slots[slot] = new Float32Array(Math.max(this.#chunkFloats, Math.ceil(bytes / 4)));
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, bytes);
  }

  /**
   * Sends one frame to `peer`, after every frame sent to it before; dials it first when no connection
   * to it (at these addresses) is open. Rejects when the connection cannot be made or ends.
   */
  send(peer: RingPeer, header: DataFrame, body?: Float32Array): Promise<void> {
    const key = peer.addresses.join(" ");
    let out = this.#outgoing.get(peer.name);
    if (!out || out.key !== key) {
      if (out) void out.channel.then((c) => c.close("the neighbour moved"), () => {});
      const channel = this.#dial(peer);
      out = { key, channel, tail: Promise.resolve() };
      this.#outgoing.set(peer.name, out);
      const entry = out;
      void channel.then(
        (c) =>
          c.ended.then(() => this.#outgoing.get(peer.name) === entry && this.#outgoing.delete(peer.name)),
        () => this.#outgoing.get(peer.name) === entry && this.#outgoing.delete(peer.name),
      );
    }
    const sent = out.tail.then(async () => (await out.channel).send(header, body));
    out.tail = sent.catch(() => {});
    return sent;
  }

  async #dial(peer: RingPeer): Promise<FrameChannel> {
    const tls = this.#opts.tls;
    const usable = peer.addresses.filter((a) => ringDials(a, tls !== undefined));
    if (usable.length === 0) {
      throw new RingUnreachableError(
        peer,
        tls
          ? "it offers no tls:// address (start it with --ring-tls-cert and --ring-tls-key) and this worker's ring " +
            "speaks TLS only"
          : "it offers only tls:// addresses and this worker's ring speaks plain TCP only (no ring certificate, or " +
            "a data plane without TLS)",
      );
    }
    try {
      const { channel } = await dialDataPlane(usable, {
        job: this.#opts.job,
        secret: this.#opts.secret,
        worker: this.#opts.name,
        role: "ring",
        maxBodyBytes: 0,
        timeoutMs: RING_DIAL_TIMEOUT_MS,
        ...(tls?.caCerts ? { caCerts: tls.caCerts } : {}),
      });
      // Nothing comes back on it; reading sees its end at once.
      void (async () => {
        while (await channel.next());
      })();
      return channel;
    } catch (error) {
      // With one address, each attempt's reason without the address the message names already.
      const attempts = error instanceof DataPlaneUnreachableError
        ? error.attempts.map((a) => usable.length === 1 ? a.slice(usable[0]!.length + 2) : a).join("; ")
        : reasonOf(error);
      throw new RingUnreachableError(peer, attempts, { cause: error });
    }
  }

  /** Closes the connections to workers outside `ring` (a ring without a dropped worker). */
  retain(ring: readonly RingPeer[]): void {
    const names = new Set(ring.map((p) => p.name));
    for (const [name, out] of this.#outgoing) {
      if (names.has(name)) continue;
      this.#outgoing.delete(name);
      void out.channel.then((c) => c.close("the worker left the ring"), () => {});
    }
  }

  /** Ends the waits of attempts up to `version` (the coordinator gave the attempt up). */
  abort(version: number, reason: string): void {
    if (version <= this.#aborted.version) return;
    this.#aborted = { version, reason };
    this.#drop(version + 1);
    this.#wake?.();
  }

  /** Drops the chunks of attempts older than `version`, so their connections are read on. */
  #drop(version: number): void {
    for (const incoming of this.#incoming.values()) {
      const kept = incoming.chunks.filter((c) => c.header.version >= version);
      if (kept.length === incoming.chunks.length) continue;
      incoming.chunks = kept;
      incoming.taken?.();
    }
  }

  /**
   * This rank's part of the reduce-scatter of attempt `version`: N − 1 rounds, in each of which it
   * sends a shard's chunks to the next neighbour (round 0: its weighted shard `rank − 1`; later: the
   * shard it completed the round before) and takes a shard's chunks from the previous neighbour,
   * adding its own term; the last round's shard is its own. Throws a {@link RingAbortedError} when the
   * attempt is aborted or the previous neighbour's connection ends, and a send's error when the next
   * neighbour cannot be reached. The shard's values are a view of `grads` (see {@link ReducedShard}).
   *
   * Every slice of `grads` is read once, so the terms and partial sums are written over it in place,
   * and a chunk is sent from there. Sends are queued in order and not waited for chunk by chunk:
   * taking never waits on a send. (With each send awaited before the next take, every rank could wait
   * on its next neighbour once a shard outgrew the socket buffers: all sending, none taking.)
   */
  async reduceScatter(req: ReduceScatterRequest): Promise<ReducedShard> {
    const { version, ring, rank, grads, weight } = req;
    const n = ring.length, length = grads.length;
    const [start, end] = shardBounds(length, n, rank);
    if (n === 1) return { start, end, values: firstTermInPlace(grads, weight) };
    this.#oldest = Math.max(this.#oldest, version);
    this.#drop(version);
    const next = ring[(rank + 1) % n]!, prev = ring[(rank + n - 1) % n]!.name;
    const chunks = (shard: number): [number, number][] => {
      const [a, b] = shardBounds(length, n, shard);
      return Array.from({ length: chunkCount(b - a, this.#chunkFloats) }, (_, j) => {
        const from = a + j * this.#chunkFloats;
        return [from, Math.min(b, from + this.#chunkFloats)];
      });
    };
    const failure: { error?: unknown } = {};
    const sending: Promise<void>[] = [];
    const send = (round: number, chunk: number, values: Float32Array) =>
      sending.push(
        this.send(next, { t: "rchunk", version, to: next.name, round, chunk }, values).catch((error) => {
          failure.error ??= error;
          this.#wake?.();
        }),
      );
    for (let round = 0; round < n - 1; round++) {
      const sent = chunks(sentShard(rank, n, round));
      const received = chunks(receivedShard(rank, n, round));
      for (let j = 0; j < Math.max(sent.length, received.length); j++) {
        if (j < sent.length) {
          const part = grads.subarray(...sent[j]!);
          send(round, j, round === 0 ? firstTermInPlace(part, weight) : part);
        }
        if (j >= received.length) continue;
        const [a, b] = received[j]!;
        const chunk = await this.#take(prev, version, failure);
        if (chunk.header.round !== round || chunk.header.chunk !== j || chunk.values.length !== b - a) {
          throw new RingAbortedError(
            `Cannot reduce attempt ${version}: worker ${prev} sent round ${chunk.header.round} chunk ${chunk.header.chunk} ` +
              `(${chunk.values.length} values) where round ${round} chunk ${j} (${b - a} values) was due`,
          );
        }
        addTermInPlace(grads.subarray(a, b), chunk.values, weight);
      }
    }
    // `grads` is the caller's again only once every slice sent from it was handed to the socket.
    await this.#orAbort(version, Promise.all(sending));
    if (failure.error !== undefined) throw failure.error;
    return { start, end, values: grads.subarray(start, end) };
  }

  /**
   * The next chunk of attempt `version` from worker `from`; its buffer is in hand until the next.
   * Throws `failure.error` once a send of the attempt failed.
   */
  async #take(from: string, version: number, failure: { error?: unknown }): Promise<Chunk> {
    for (;;) {
      this.#checkAborted(version);
      if (failure.error !== undefined) throw failure.error;
      const incoming = this.#incoming.get(from);
      const chunk = incoming?.chunks[0];
      if (chunk && chunk.header.version < version) {
        incoming!.chunks.shift();
        incoming!.taken?.();
        continue;
      }
      if (chunk && chunk.header.version === version) {
        incoming!.chunks.shift();
        incoming!.held = chunk.slot;
        incoming!.taken?.();
        return chunk;
      }
      if (incoming?.channel.isClosed) {
        throw new RingAbortedError(
          `Cannot reduce attempt ${version}: the ring connection from worker ${from} ended (${
            (await incoming.channel.ended).message
          })`,
        );
      }
      if (this.#closed) {
        throw new RingAbortedError(`Cannot reduce attempt ${version}: the worker left the job`);
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  /** `promise`, or a {@link RingAbortedError} as soon as attempt `version` is aborted. */
  async #orAbort<T>(version: number, promise: Promise<T>): Promise<T> {
    this.#checkAborted(version);
    let stop: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      stop = () => reject(new RingAbortedError(`Cannot reduce attempt ${version}: ${this.#aborted.reason}`));
    });
    const previous = this.#wake;
    // A send that waits on a stopped neighbour ends on the abort; the wake also serves #take.
    this.#wake = () => {
      previous?.();
      if (version <= this.#aborted.version || this.#closed) stop!();
    };
    try {
      return await Promise.race([promise, aborted]);
    } finally {
      this.#wake = undefined;
    }
  }

  #checkAborted(version: number): void {
    if (version <= this.#aborted.version) {
      throw new RingAbortedError(`Cannot reduce attempt ${version}: ${this.#aborted.reason}`);
    }
  }

  /** Stops listening and closes every ring connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    for (const { channel, taken } of this.#incoming.values()) {
      channel.close("the worker left the job");
      taken?.();
    }
    for (const out of this.#outgoing.values()) {
      void out.channel.then((c) => c.close("the worker left the job"), () => {});
    }
    this.#incoming.clear();
    this.#outgoing.clear();
    await this.#listener.close();
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
