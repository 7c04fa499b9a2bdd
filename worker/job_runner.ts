/**
 * One job on one worker: the model rebuilt from the coordinator's Keras config, the datasets it
 * shipped, the weights of the current version, and the link on which requests arrive: the job's
 * data plane (a `work` connection to the coordinator) where the worker reaches it, NATS otherwise.
 * NATS also carries what every job has: the heartbeat, the end of the job, and liveness probes.
 *
 * @module
 */
import type { Msg, NatsConnection } from "npm:nats@2.29.3";
import {
  type BackendName,
  Engine,
  type EngineSpec,
  initBackend,
  type LossSpec,
  type MetricSpec,
  Network,
  nonFiniteProbe,
  type SliceExchange,
  toLossSpec,
} from "../shared/model/mod.ts";
import {
  type Body,
  bodyParts,
  decodeMessage,
  encodeMessage,
  publishLarge,
  requestLarge,
  serve,
  serveMessages,
  type Service,
} from "../shared/io/nats/mod.ts";
import {
  BodyBuffers,
  DataPlaneAuthError,
  dialDataPlane,
  float32WithHeadRoom,
  type FrameChannel,
  isLoopbackHost,
  isWildcardHost,
  parseDataAddress,
  sharedMemoryAvailable,
  SharedRegion,
} from "../shared/io/data_plane/mod.ts";
import {
  Ack,
  DataFrame,
  decodeDataset,
  decodeIndices,
  decodeWeights,
  encodeTrainReply,
  EndHeader,
  Heartbeat,
  type JobSpec,
  jobSubjects,
  type ReadyRequest,
  type RingPeer,
  WeightsHeader,
  type WorkReply,
  WorkRequest,
} from "../shared/io/protocol/mod.ts";
import { type CachedDataset, closeDataset, gatherBatch, rangeOf, type WorkerDataset } from "./dataset.ts";
import { PrefetchingReader } from "../shared/io/dataset/mod.ts";
import {
  BlockingSliceExchange,
  type ExchangeRoute,
  SharedMemorySliceExchange,
  ThreadSliceExchange,
  type WorkerSliceExchange,
} from "./slice_exchange.ts";
import { blockingSocketsAvailable } from "../shared/io/data_plane/blocking_unix.ts";
import { RingNode, RingUnreachableError } from "./ring_node.ts";
import type { WorkerHooks, WorkerOptions } from "./worker.ts";

/** How a job ended for this worker. */
export type JobOutcome = "ended" | "dropped" | "vanished" | "refused" | "aborted";

/** Whether the connection is up, and since when (`performance.now()`). */
export interface Link {
  connected: boolean;
  since: number;
}

interface Weights {
  version: number;
  params: Float32Array;
  state: Float32Array;
}

/** Weights arriving in parts down the chain of workers (ring reduction). */
interface ChainedWeights {
  header: WeightsHeader;
  chain: readonly RingPeer[];
  floats: Float32Array;
  received: number;
}

/** The weights parts of one version forwarded down the chain. */
interface Forwarded {
  version: number;
  /** Settles once every part forwarded so far was handed to the next worker's connection. */
  sent: Promise<void>;
  /** Set when the next worker could not be reached: no further part of the version is sent. */
  failed?: RingUnreachableError;
}

/** Rows of the forward pass timed at setup (the coordinator derives first deadlines from it). */
const WARMUP_ROWS = 32;

/** Largest frame body read from the coordinator, at least (dataset parts are 16 MiB). */
const MIN_FRAME_BYTES = 64 * 1024 * 1024;

/** A dataset arriving in parts over the data plane. */
interface Arriving {
  hash: string;
  body: Uint8Array;
  received: number;
}

/** One job on one worker; see the module doc. */
export class JobRunner {
  readonly #subjects: ReturnType<typeof jobSubjects>;
  readonly #datasets = new Map<string, WorkerDataset>();
  #arriving: Arriving | undefined;
  #weights: Weights | undefined;
  #waiters: (() => void)[] = [];
  #engine: Engine | undefined;
  /** Started for models whose slices exchange partial results (BatchNormalization). */
  #exchange: WorkerSliceExchange | undefined;
  /** The data-plane connection, when the worker reached it. */
  #channel: FrameChannel | undefined;
  /**
   * Weights that come on the socket or down the chain, in two slots used in turn: a version's weights
   * stay in place until the next-but-one version arrives, when nothing reads them any more.
   */
  readonly #weightBodies = new BodyBuffers();
  /** The body of a weights part from the coordinator, reused: a part is copied out once read. */
  readonly #partBody = new BodyBuffers();
  #weightsSlot = 0;
  /** Where gradients sent on the socket are computed into: a reply is written before the next request runs. */
  #socketGradients: Float32Array | undefined;
  /** Memory shared with a coordinator on this host: gradients written here, weights read there. */
  #shared: { grads: SharedRegion; weights: SharedRegion } | undefined;
  /** The slice-exchange area of the workers on the coordinator's host, when mapped. */
  #syncArea: SharedRegion | undefined;
  /** This worker's place in the ring, when the job reduces on one. */
  #ring: RingNode | undefined;
  /** Weights coming down the chain, and the chain (ring order) of the latest complete version. */
  #chained: ChainedWeights | undefined;
  #chain: { version: number; peers: readonly RingPeer[] } | undefined;
  /** The weights of the latest version forwarded down the chain. */
  #forwarded: Forwarded | undefined;
  readonly #hooks: WorkerHooks;
  #ended!: (outcome: JobOutcome) => void;
  readonly #endedPromise = new Promise<JobOutcome>((resolve) => this.#ended = resolve);
  /** Last heartbeat (`performance.now()`) and what it announced. */
  #beat = { at: performance.now(), intervalMs: 1000, misses: 10 };

  constructor(
    readonly nc: NatsConnection,
    readonly spec: JobSpec,
    readonly opts: WorkerOptions,
    readonly cache: Map<string, CachedDataset>,
    readonly link: Link,
    /** Milliseconds of the join request's round trip. */
    readonly rttMs: number,
  ) {
    this.#subjects = jobSubjects(spec.job);
    this.#hooks = opts.hooks ?? {};
  }

  /** Serves the job until it ends for this worker; says how it ended. */
  async run(abort: Promise<void>): Promise<JobOutcome> {
    const { nc, spec } = this;
    const services: Service[] = [];
    let watching = true;
    try {
      const ready = await this.#setup();
      const onError = (error: unknown, msg: Msg | undefined) =>
        console.error(`Worker ${this.opts.name}: ${msg?.subject ?? "subscription"}: ${reason(error)}`);
      services.push(
        serve(
          nc,
          `${this.#subjects.worker(this.opts.name)}.alive`,
          (msg) => msg.respond(encodeMessage({ ok: true })),
        ),
        serve(nc, this.#subjects.end, (msg) => {
          const { header } = decodeMessage(msg.data, EndHeader);
          // A stopped run lets its workers go as a drop: they join its rerun.
          if (header.job === spec.job) this.#ended(header.reason === "stopped" ? "dropped" : "ended");
        }, { onError }),
        serve(nc, this.#subjects.heartbeat, (msg) => this.#onHeartbeat(msg), { onError }),
      );
      if (this.#channel) {
        void this.#serveChannel(this.#channel);
      } else {
        services.push(
          serveMessages(
            nc,
            this.#subjects.weights,
            WeightsHeader,
            ({ header, body }) => this.#onWeights(header, body),
            {
              onError,
            },
          ),
          serveMessages(
            nc,
            this.#subjects.worker(this.opts.name),
            WorkRequest,
            async ({ header, body }, msg) => {
              if (!msg.reply) return;
              const reply = await this.#onWork(header, body);
              await publishLarge(this.nc, msg.reply, reply.header, reply.body);
            },
            {
              onError,
              errorReply: (error) => encodeMessage(this.#errorReply(error)),
            },
          ),
        );
      }
      await nc.flush();
      const { header: ack } = await requestLarge(nc, this.#subjects.ready, ready, undefined, Ack, {
        timeout: 30_000,
      });
      if (ready.error || !ack.ok) {
        console.warn(
          `Worker ${this.opts.name}: job ${spec.job} refused its model${
            ready.error ? `: ${ready.error}` : ""
          }`,
        );
        return "refused";
      }
      if (!this.opts.quiet) {
        console.error(
          `Worker ${this.opts.name} joined job ${spec.job} (${
            this.#channel ? `data plane ${this.#channel.peer}` : "bulk data through NATS"
          })`,
        );
      }
      this.#beat.at = performance.now();
      void this.#watchCoordinator(() => watching);
      return await Promise.race([this.#endedPromise, abort.then(() => "aborted" as const)]);
    } finally {
      watching = false;
      this.#channel?.close("the worker left the job");
      await Promise.all(services.map((s) => s.stop()));
      await this.#exchange?.close();
      await this.#ring?.close();
      this.#syncArea?.close();
      this.#shared?.grads.close();
      this.#shared?.weights.close();
      for (const ds of this.#datasets.values()) closeDataset(ds);
    }
  }

  #onHeartbeat(msg: Msg): void {
    const { header } = decodeMessage(msg.data, Heartbeat);
    if (header.job !== this.spec.job) return;
    this.#beat = { at: performance.now(), intervalMs: header.intervalMs, misses: header.misses };
    if (!header.members.includes(this.opts.name)) {
      console.warn(
        `Worker ${this.opts.name}: job ${this.spec.job} no longer lists it at step ${header.step} (it was dropped); ` +
          "leaving it to join again",
      );
      this.#ended("dropped");
    }
  }

  /**
   * Ends the job as vanished when no heartbeat came for `misses` intervals while connected. Before
   * deciding, a round trip to the server lets heartbeats that queued up behind a long computation
   * arrive first.
   */
  async #watchCoordinator(active: () => boolean): Promise<void> {
    const silentMs = () => performance.now() - Math.max(this.#beat.at, this.link.since);
    while (active()) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, this.#beat.intervalMs)));
      const limit = this.#beat.intervalMs * this.#beat.misses;
      if (!active() || !this.link.connected || silentMs() <= limit) continue;
      try {
        await this.nc.flush();
        await new Promise((resolve) => setTimeout(resolve, 20));
      } catch {
        continue;
      }
      if (!active() || !this.link.connected || silentMs() <= limit) continue;
      console.warn(
        `Worker ${this.opts.name}: no heartbeat from the coordinator of job ${this.spec.job} for ${
          Math.round(silentMs())
        } ms (limit ${limit} ms); leaving the job as vanished`,
      );
      this.#ended("vanished");
      return;
    }
  }

  /** Builds the model, times a forward pass, reaches the data plane; returns the manifest (or the error). */
  async #setup(): Promise<ReadyRequest> {
    const { spec, opts } = this;
    const base = {
      job: spec.job,
      worker: opts.name,
      backend: "",
      device: "cpu",
      params: [],
      state: [],
      link: "nats" as const,
      warmupMs: 0,
      warmupRows: WARMUP_ROWS,
      rttMs: this.rttMs,
    };
    try {
      const backend = await initBackend(opts.backend ?? spec.backend as BackendName);
      const network = Network.fromConfig(spec.model, spec.seed);
      const engineSpec: EngineSpec = {
        loss: toLossSpec(spec.loss as string | LossSpec),
        metrics: spec.metrics as MetricSpec[],
        seed: spec.seed,
        ...(spec.weightedLabels ? { weightedLabels: spec.weightedLabels } : {}),
      };
      this.#engine = new Engine(network, engineSpec);
      const warmupMs = this.#warmup(network);
      const modelBytes = 4 * (network.params.length + network.state.length);
      const link = await this.#reachDataPlane(Math.max(MIN_FRAME_BYTES, 2 * modelBytes + (1 << 20)));
      if (link.error) return { ...base, error: link.error };
      if (network.exchangesBetweenSlices) {
        this.#exchange = await this.#startExchange(link.address, link.caCerts);
      }
      let ring: RingNode | undefined;
      try {
        ring = await this.#startRing(Math.max(MIN_FRAME_BYTES, 2 * modelBytes + (1 << 20)), link.caCerts);
      } catch (error) {
        const at = opts.ringListen
          ? ` at ${opts.ringListen.hostname}:${opts.ringListen.port} (--ring-listen)`
          : "";
        return {
          ...base,
          error: `Worker ${opts.name} cannot listen for ring neighbours${at}: ${
            reason(error)
          }; free that port or pick another one`,
        };
      }
      const device = opts.gpu !== undefined
        ? `gpu:${opts.gpu}`
        : backend.name === "tensorflow-gpu"
        ? "gpu"
        : "cpu";
      const manifest = (l: typeof network.paramLayout) => l.map((e) => ({ path: e.path, shape: e.shape }));
      return {
        ...base,
        backend: backend.name,
        device,
        params: manifest(network.paramLayout),
        state: manifest(network.stateLayout),
        link: this.#channel ? "direct" : "nats",
        ...(link.note ? { linkNote: link.note } : {}),
        ...(ring ? { ringAddresses: [...ring.addresses] } : {}),
        warmupMs,
      };
    } catch (error) {
      return { ...base, error: `Worker ${opts.name} could not rebuild the model: ${reason(error)}` };
    }
  }

  /**
   * The slice exchange: on the coordinator's Unix socket with blocking reads when the data plane was
   * reached there, otherwise in a helper thread, over the data plane or NATS as the work link goes.
   */
  async #startExchange(
    address: string | undefined,
    caCerts: string[] | undefined,
  ): Promise<WorkerSliceExchange> {
    const { spec, opts } = this;
    if (address?.startsWith("unix:") && blockingSocketsAvailable()) {
      const socket = BlockingSliceExchange.connect(address.slice("unix:".length), {
        job: spec.job,
        secret: spec.dataPlane!.secret,
        name: opts.name,
      });
      const area = this.#syncArea;
      this.#syncArea = undefined;
      return area ? new SharedMemorySliceExchange(area, socket) : socket;
    }
    const route: ExchangeRoute = this.#channel
      ? {
        via: "direct",
        addresses: spec.dataPlane!.addresses,
        secret: spec.dataPlane!.secret,
        ...(caCerts ? { caCerts } : {}),
      }
      : { via: "nats", servers: opts.nats, ...(opts.auth ? { auth: opts.auth } : {}) };
    return await ThreadSliceExchange.start({ route, name: opts.name, job: spec.job });
  }

  /**
   * Listens for ring neighbours when the job may reduce on a ring and this worker reached the data
   * plane: on a Unix socket where the coordinator offers one, and on TCP where it does: at
   * `ringListen` when given, otherwise on a free port (loopback when the coordinator listens there,
   * otherwise every interface, advertised by this host's address).
   * A data plane over TLS gets a ring over TLS when this worker holds a ring certificate
   * (`ringTls`): neighbours are dialed with `caCerts`, the CA this worker trusts for the coordinator.
   * Without one it gets no ring (the coordinator keeps the job's steps with it on the star).
   */
  async #startRing(maxBodyBytes: number, caCerts: string[] | undefined): Promise<RingNode | undefined> {
    const plane = this.spec.dataPlane;
    if (!this.#channel || !plane || (this.spec.allreduce ?? "star") === "star") return undefined;
    const addresses = plane.addresses.map(parseDataAddress);
    const encrypted = addresses.some((a) => a.kind === "tls");
    const certificate = this.opts.ringTls;
    if (encrypted && !certificate) {
      if (this.spec.allreduce === "ring") {
        console.warn(
          `Worker ${this.opts.name}: job ${this.spec.job} reduces on a ring over a TLS data plane, but this worker ` +
            "has no ring certificate: it stays on the star. Start it with --ring-tls-cert FILE --ring-tls-key FILE",
        );
      }
      return undefined;
    }
    const tcp = addresses.find((a) => a.kind === (encrypted ? "tls" : "tcp"));
    const loopback = tcp !== undefined && tcp.kind !== "unix" && isLoopbackHost(tcp.hostname);
    const fixed = this.opts.ringListen;
    const listen = fixed
      ? { listen: fixed, ...(isWildcardHost(fixed.hostname) ? { advertise: hostAddress() } : {}) }
      : loopback
      ? { listen: { hostname: "127.0.0.1", port: 0 } }
      : { listen: { hostname: "0.0.0.0", port: 0 }, advertise: hostAddress() };
    this.#ring = await RingNode.start({
      job: this.spec.job,
      secret: plane.secret,
      name: this.opts.name,
      unix: addresses.some((a) => a.kind === "unix"),
      ...(tcp ? { tcp: listen } : {}),
      ...(encrypted && certificate
        ? { tls: { cert: certificate.cert, key: certificate.key, ...(caCerts ? { caCerts } : {}) } }
        : {}),
      maxBodyBytes,
      onWeightsPart: (header, body) => this.#onWeightsPart(header, body),
      onWarning: (message) => console.warn(`Worker ${this.opts.name}: ${message}`),
    });
    return this.#ring;
  }

  /** Milliseconds of one forward pass over {@link WARMUP_ROWS} rows of zeros (after one untimed pass). */
  #warmup(network: Network): number {
    const inputs = network.inputShapes.map((shape) => {
      const dims = [WARMUP_ROWS, ...shape.map((d) => d ?? 1)];
      return { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), shape: dims };
    });
    const batch = { inputs, y: null };
    const engine = this.#engine!;
    engine.predict(network.params, network.state, batch);
    const t0 = performance.now();
    engine.predict(network.params, network.state, batch);
    return performance.now() - t0;
  }

  /**
   * Dials the job's data plane, when it offers one. A worker that cannot reach it works through NATS
   * with `transport: "auto"` (the note says why); with `direct` it reports the error.
   */
  async #reachDataPlane(
    maxBodyBytes: number,
  ): Promise<{ note?: string; error?: string; caCerts?: string[]; address?: string }> {
    const plane = this.spec.dataPlane;
    if (!plane || this.spec.transport === "nats") return {};
    let caCerts: string[] | undefined;
    const caFile = this.opts.auth?.tls?.caFile;
    if (caFile) caCerts = [await Deno.readTextFile(caFile)];
    try {
      const { channel, address } = await dialDataPlane(plane.addresses, {
        job: this.spec.job,
        secret: plane.secret,
        worker: this.opts.name,
        role: "work",
        maxBodyBytes,
        ...(caCerts ? { caCerts } : {}),
      });
      this.#channel = channel;
      await this.#greet(channel, address);
      return { address, ...(caCerts ? { caCerts } : {}) };
    } catch (error) {
      const note = error instanceof Error ? error.message : String(error);
      if (this.spec.transport === "direct" || error instanceof DataPlaneAuthError) {
        return {
          error: `Worker ${this.opts.name} cannot use the data plane of job ${this.spec.job}: ${note}`,
        };
      }
      console.warn(`Worker ${this.opts.name}: ${note}; sending bulk data through NATS instead`);
      return { note };
    }
  }

  /**
   * The hello exchange on a new `work` connection (protocol.ts `hello`): on the coordinator's host,
   * offers a gradient region and maps the coordinator's weights region; elsewhere, says hello only.
   */
  async #greet(channel: FrameChannel, address: string): Promise<void> {
    const net = this.#engine!.network;
    // A train reply's body: the gradient padded to 8 bytes, then each BatchNorm layer's mean and
    // variance, as many floats as the moving statistics in `state`.
    const replyBytes = Math.ceil((4 * net.params.length) / 8) * 8 + Math.ceil((4 * net.state.length) / 8) * 8;
    let grads: SharedRegion | undefined;
    if (address.startsWith("unix:") && sharedMemoryAvailable()) {
      try {
        grads = SharedRegion.create(`shoal-${this.spec.job}-${this.opts.name}`, 2 * replyBytes);
      } catch (error) {
        console.warn(`Worker ${this.opts.name}: no shared memory: ${reason(error)}`);
      }
    }
    await channel.send({
      t: "hello",
      ...(grads ? { shm: { path: grads.path, bytes: 2 * replyBytes } } : {}),
    });
    const answer = DataFrame.safeParse((await channel.next())?.header);
    if (!answer.success || answer.data.t !== "hello") {
      grads?.close();
      throw new Error(
        `the coordinator did not answer the data-plane hello (${(await channel.ended).message})`,
      );
    }
    let weights: SharedRegion | undefined;
    if (grads && answer.data.shm) {
      try {
        weights = SharedRegion.open(answer.data.shm.path, answer.data.shm.bytes);
      } catch (error) {
        console.warn(`Worker ${this.opts.name}: cannot map the coordinator's weights: ${reason(error)}`);
      }
      const sync = answer.data.sync;
      if (weights && typeof sync === "object") {
        try {
          this.#syncArea?.close();
          this.#syncArea = SharedRegion.open(sync.path, sync.bytes);
        } catch (error) {
          console.warn(`Worker ${this.opts.name}: cannot map the slice-exchange area: ${reason(error)}`);
        }
      }
      await channel.send({
        t: "hello",
        ...(weights ? { shm: { path: grads.path, bytes: replyBytes } } : {}),
        ...(weights && this.#syncArea ? { sync: "mapped" as const } : {}),
      });
    }
    // The coordinator mapped the gradient region before it answered: the file is no longer needed.
    grads?.unlink();
    if (grads && weights) this.#shared = { grads, weights };
    else grads?.close();
  }

  /**
   * Serves the data-plane connection: weights and requests in, replies out, in order. A `leave` frame
   * ends the job for this worker (it joins again); a connection that breaks without one leaves the
   * verdict to the heartbeat: a live coordinator stops listing the worker (it joins again), a dead
   * one stops beating (the job vanished).
   */
  async #serveChannel(channel: FrameChannel): Promise<void> {
    // Requests run one after the other while frames keep being read: an abort or a probe reaches a
    // worker that waits in the ring.
    let requests = Promise.resolve();
    for (;;) {
      const frame = await channel.next((header, bytes) => this.#bodyInto(header, bytes));
      if (!frame) break;
      const parsed = DataFrame.safeParse(frame.header);
      if (!parsed.success) {
        channel.close(
          `the coordinator sent a frame this worker cannot read: ${parsed.error.message.slice(0, 200)}`,
        );
        break;
      }
      const f = parsed.data;
      if (f.t === "weights") {
        this.#onWeights(f, f.shm === undefined ? frame.body : this.#sharedWeights(f));
      } else if (f.t === "req") {
        requests = requests.then(async () => {
          let reply: { header: WorkReply; body?: Body };
          try {
            reply = await this.#onWork(f.req, frame.body, { slot: f.shmSlot });
          } catch (error) {
            console.error(`Worker ${this.opts.name}: ${f.req.kind} request: ${reason(error)}`);
            reply = { header: this.#errorReply(error) };
          }
          await this.#reply(channel, f.id, reply, f.shmSlot).catch(() => {});
        });
      } else if (f.t === "wpart") {
        this.#onWeightsPart(f, frame.body);
      } else if (f.t === "abort") {
        this.#ring?.abort(f.version, f.reason);
      } else if (f.t === "ping") {
        void channel.send({ t: "pong", id: f.id }).catch(() => {});
      } else if (f.t === "leave") {
        if (!f.ended) console.warn(`Worker ${this.opts.name}: job ${this.spec.job} let it go: ${f.reason}`);
        this.#ended(f.ended ? "ended" : "dropped");
        return;
      }
    }
    if (!this.opts.quiet) {
      console.warn(
        `Worker ${this.opts.name}: ${(await channel.ended).message}; waiting for the coordinator's heartbeat`,
      );
    }
  }

  /**
   * Where a frame's body is read to: a weights body into the slot not holding the current weights, a
   * weights part into the buffer every part is read into.
   */
  #bodyInto(header: unknown, bytes: number): Uint8Array | undefined {
    const h = header as { t?: unknown; shm?: unknown };
    // A part is copied into its version's buffer as soon as it was read: one buffer serves every part.
    if (h.t === "wpart") return this.#partBody.take(0, bytes);
    if (h.t !== "weights" || h.shm !== undefined) return undefined;
    return this.#takeWeightsSlot(bytes);
  }

  /**
   * `bytes` bytes of the weights slot not holding the current weights, for the next version (from the
   * socket or down the chain): two model-size buffers serve every version, none is allocated per step.
   */
  #takeWeightsSlot(bytes: number): Uint8Array {
    this.#weightsSlot ^= 1;
    return this.#weightBodies.take(this.#weightsSlot, bytes);
  }

  /** The weights of a frame that names a slot of the coordinator's region (views, no copy). */
  #sharedWeights(f: WeightsHeader & { shm?: number }): Uint8Array {
    const region = this.#shared?.weights;
    const bytes = 4 * (f.paramsLength + f.stateLength);
    const slotBytes = (region?.bytes.byteLength ?? 0) / 2;
    if (!region || f.shm === undefined || f.shm > 1 || bytes > slotBytes) {
      throw new RangeError(`Cannot read weights version ${f.version} from shared memory slot ${f.shm}`);
    }
    return region.bytes.subarray(f.shm * slotBytes, f.shm * slotBytes + bytes);
  }

  /**
   * Sends a reply: a train reply's body into slot `slot` of the shared gradient region when the
   * request named one, everything else on the socket.
   */
  async #reply(
    channel: FrameChannel,
    id: number,
    reply: { header: WorkReply; body?: Body },
    slot: number | undefined,
  ): Promise<void> {
    const region = this.#shared?.grads;
    const parts = bodyParts(reply.body);
    const bytes = parts.reduce((n, p) => n + p.byteLength, 0);
    const slotBytes = (region?.bytes.byteLength ?? 0) / 2;
    if (!region || slot === undefined || reply.header.kind !== "train" || bytes > slotBytes) {
      return await channel.send({ t: "rep", id, rep: reply.header }, reply.body);
    }
    const start = slot * slotBytes;
    let offset = start;
    for (const part of parts) {
      // The gradient was computed in place (see #gradientSlot): no copy onto itself.
      const inPlace = part.buffer === region.bytes.buffer &&
        part.byteOffset === region.bytes.byteOffset + offset;
      if (!inPlace) region.bytes.set(part, offset);
      offset += part.byteLength;
    }
    await channel.send({ t: "rep", id, rep: reply.header, shmBytes: bytes, shmSlot: slot });
  }

  #errorReply(error: unknown): WorkReply {
    return {
      kind: "error",
      job: this.spec.job,
      worker: this.opts.name,
      error: reason(error),
      ...(error instanceof RingUnreachableError
        ? {
          ringUnreachable: {
            worker: error.peer.name,
            addresses: [...error.peer.addresses],
            reason: error.reason,
          },
        }
        : {}),
    };
  }

  #onWeights(header: WeightsHeader, body: Uint8Array): void {
    if (header.job !== this.spec.job) return;
    this.#weights = decodeWeights(header, body);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * A part of weights coming down the chain: kept, and forwarded to the next worker of the chain
   * (the part's bytes, no copy); the last part makes the version current. Parts of an older version
   * than the one arriving are dropped.
   */
  #onWeightsPart(f: Extract<DataFrame, { t: "wpart" }>, body: Uint8Array): void {
    if (f.job !== this.spec.job) return;
    const total = f.paramsLength + f.stateLength;
    if (f.chain && !this.#beginChain(f, f.chain)) return;
    const arriving = this.#chained;
    if (!arriving || arriving.header.version !== f.version) return;
    const part = body.byteLength / 4;
    if (f.offset !== arriving.received || f.offset + part > total || body.byteLength % 4 !== 0) {
      this.#chained = undefined;
      throw new RangeError(
        `Cannot take weights part ${f.offset}..${
          f.offset + part
        } of version ${f.version}: ${arriving.received} of ${total} arrived`,
      );
    }
    new Uint8Array(arriving.floats.buffer, arriving.floats.byteOffset + f.offset * 4, body.byteLength).set(
      body,
    );
    arriving.received += part;
    const at = arriving.chain.findIndex((p) => p.name === this.opts.name);
    const next = at >= 0 ? arriving.chain[at + 1] : undefined;
    let forwarded = this.#forwarded;
    if (forwarded?.version !== f.version) {
      forwarded = this.#forwarded = { version: f.version, sent: Promise.resolve() };
    }
    if (next && this.#ring && !forwarded.failed) {
      const { t: _, chain: __, ...header } = f;
      const sent = this.#ring.send(next, {
        t: "wpart",
        ...header,
        ...(f.offset === 0 ? { chain: [...arriving.chain] } : {}),
      }, arriving.floats.subarray(f.offset, f.offset + part)).catch((error) => {
        if (forwarded.failed) return;
        if (error instanceof RingUnreachableError) forwarded.failed = error;
        console.warn(`Worker ${this.opts.name}: forwarding weights to ${next.name}: ${reason(error)}`);
      });
      forwarded.sent = Promise.all([forwarded.sent, sent]).then(() => {});
    }
    if (arriving.received < total) return;
    this.#chained = undefined;
    this.#chain = { version: f.version, peers: arriving.chain };
    const { buffer, byteOffset, byteLength } = arriving.floats;
    this.#onWeights(arriving.header, new Uint8Array(buffer, byteOffset, byteLength));
  }

  /**
   * Starts taking the parts of version `f.version` down `chain`, into the weights slot not holding the
   * current version; false when a newer version is arriving. Taking the version again keeps its parts.
   */
  #beginChain(f: Extract<DataFrame, { t: "wpart" }>, chain: readonly RingPeer[]): boolean {
    const arriving = this.#chained?.header.version;
    if (arriving !== undefined && arriving > f.version) return false;
    if (arriving === f.version) return true;
    const total = f.paramsLength + f.stateLength;
    const bytes = this.#takeWeightsSlot(4 * total);
    this.#chained = {
      header: { job: f.job, version: f.version, paramsLength: f.paramsLength, stateLength: f.stateLength },
      chain,
      floats: new Float32Array(bytes.buffer, bytes.byteOffset, total),
      received: 0,
    };
    this.#ring?.retain(chain);
    return true;
  }

  async #weightsFor(version: number): Promise<Weights> {
    const deadline = Date.now() + (this.opts.weightsTimeoutMs ?? 60_000);
    while (this.#weights?.version !== version) {
      if (this.#weights && this.#weights.version > version) {
        throw new RangeError(
          `Cannot serve a request for weights version ${version} as version ${this.#weights.version} replaced it`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `Cannot serve a request for weights version ${version} as they did not arrive within ${
            this.opts.weightsTimeoutMs ?? 60_000
          } ms (latest: ${this.#weights?.version ?? "none"})`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#weights;
  }

  #dataset(name: string): WorkerDataset {
    const ds = this.#datasets.get(name);
    if (!ds) {
      throw new Error(`Cannot use dataset "${name}" as it was not shipped to worker ${this.opts.name}`);
    }
    return ds;
  }

  /**
   * Where the gradient of a train request naming `slot` of the shared region is computed into: the
   * slot itself, so the reply needs no copy. Undefined without shared memory or room.
   */
  #gradientSlot(slot: number | undefined): Float32Array | undefined {
    const region = this.#shared?.grads;
    const length = this.#engine!.network.params.length;
    if (!region || slot === undefined) return undefined;
    const slotBytes = region.bytes.byteLength / 2;
    const start = region.bytes.byteOffset + slot * slotBytes;
    if (length * 4 > slotBytes || start % 4 !== 0) return undefined;
    return new Float32Array(region.bytes.buffer, start, length);
  }

  /**
   * The gradient array of replies sent on the socket, reused: `#serveChannel` writes a reply whole
   * before it runs the next request.
   */
  #gradientBuffer(): Float32Array {
    const length = this.#engine!.network.params.length;
    if (this.#socketGradients?.length !== length) this.#socketGradients = float32WithHeadRoom(length);
    return this.#socketGradients;
  }

  /** The slice exchange of a train request's slice; none when the slice is the whole batch. */
  #exchangeFor(
    header: { version: number; slice: number; slices: number; sharedExchange?: boolean },
  ): SliceExchange | undefined {
    if (header.slices === 1 || !this.#engine!.network.exchangesBetweenSlices) return undefined;
    if (!this.#exchange) {
      throw new Error(`Worker ${this.opts.name} has no slice exchange for job ${this.spec.job}`);
    }
    return this.#exchange.forSlice(header.version, header.slice, header.slices, header.sharedExchange);
  }

  /** This slice's reduce-scatter on the ring of the weights' chain (slice k is rank k). */
  #reduceOnRing(
    header: Extract<WorkRequest, { kind: "train" }>,
    count: number,
    grads: Float32Array,
  ): Promise<{ start: number; end: number; values: Float32Array }> {
    const peers = this.#chain?.version === header.version ? this.#chain.peers : undefined;
    if (!this.#ring || !peers || !header.ring) {
      throw new Error(
        `Worker ${this.opts.name} cannot reduce step ${header.step} on a ring: ${
          this.#ring
            ? `no chain came with weights version ${header.version}`
            : "it does not listen for neighbours"
        }`,
      );
    }
    if (peers.length !== header.slices || peers[header.slice]?.name !== this.opts.name) {
      throw new Error(
        `Worker ${this.opts.name} cannot reduce slice ${header.slice} of ${header.slices} on a ring of ${peers.length} ` +
          `whose rank ${header.slice} is ${peers[header.slice]?.name}`,
      );
    }
    return this.#ring.reduceScatter({
      version: header.version,
      ring: peers,
      rank: header.slice,
      grads,
      weight: count / header.ring.total,
    });
  }

  /**
   * Computes what a request asks for; throws for a request this worker cannot serve. `channel` is set
   * for a request that came on the data-plane connection, with the shared-memory slot it named.
   */
  async #onWork(
    header: WorkRequest,
    body: Uint8Array,
    channel?: { slot: number | undefined },
  ): Promise<{ header: WorkReply; body?: Body }> {
    const base = { job: this.spec.job, worker: this.opts.name };
    if (header.job !== this.spec.job) {
      throw new RangeError(
        `Cannot serve a request for job ${header.job}: this worker runs job ${this.spec.job}`,
      );
    }
    switch (header.kind) {
      case "data":
        return { header: { kind: "data", ...base, cached: this.#onData(header, body) } };
      case "files":
        this.#onFiles(header);
        return { header: { kind: "data", ...base, cached: true } };
      case "train": {
        // The body's last `ahead` indices are this worker's likely slice of the next step: read ahead.
        const all = decodeIndices(body);
        const indices = all.subarray(0, all.length - (header.ahead ?? 0));
        const ds = this.#dataset(header.data);
        const batch = await gatherBatch(ds, indices, all.subarray(indices.length));
        const w = await this.#weightsFor(header.version);
        // The next workers of the chain get the weights before this one computes: a computing worker
        // forwards nothing, and a slice exchange would wait for theirs.
        if (this.#forwarded?.version === header.version) {
          await this.#forwarded.sent;
          // The next worker never got these weights: the step cannot reduce on this ring.
          if (header.ring && this.#forwarded.failed) throw this.#forwarded.failed;
        }
        this.#hooks.beforeTrain?.(header.step);
        const t0 = performance.now();
        const r = this.#engine!.trainSlice(
          w.params,
          w.state,
          batch,
          header.step,
          header.rowOffset,
          {
            exchange: this.#exchangeFor(header),
            ...(header.encoding === "f32" && channel
              ? {
                gradsInto: (header.ring ? undefined : this.#gradientSlot(channel.slot)) ??
                  this.#gradientBuffer(),
              }
              : {}),
            // A star reply says whether its float32 gradient is finite, checked where it was computed,
            // so the coordinator need not read it all again (a ring shard also holds others' values).
            checkFinite: header.encoding === "f32" && !header.ring,
          },
        );
        const computeMs = performance.now() - t0;
        const base = {
          kind: "train" as const,
          job: this.spec.job,
          worker: this.opts.name,
          step: header.step,
          computeMs,
          encoding: header.encoding,
        };
        const changed = this.#hooks.trainReply?.({ header: base, grads: r.grads });
        const reply = changed ?? { header: base, grads: r.grads };
        if (!header.ring) {
          const finite = changed ? nonFiniteProbe(reply.grads) === 0 : r.gradsFinite === true;
          return encodeTrainReply(
            { ...reply.header, ...(finite ? { gradsFinite: true } : {}) },
            r,
            reply.grads,
          );
        }
        const t1 = performance.now();
        const shard = await this.#reduceOnRing(header, r.count, reply.grads);
        // The shard is a view of the gradient's array: the reply goes out before the next request runs.
        return encodeTrainReply(
          { ...reply.header, shard: { start: shard.start, end: shard.end }, ringMs: performance.now() - t1 },
          r,
          shard.values,
        );
      }
      case "eval":
      case "predict": {
        const ds = this.#dataset(header.data);
        const w = await this.#weightsFor(header.version);
        const engine = this.#engine!;
        const ranges: [number, number][] = [];
        for (let c = header.first; c < header.end; c++) {
          ranges.push([c * header.batchSize, Math.min(ds.length, (c + 1) * header.batchSize)]);
        }
        const rows = (k: number) => rangeOf(ds, ranges[k]![0], ranges[k]![1], ranges[k + 1]);
        if (header.kind === "eval") {
          const chunks = [];
          for (let k = 0; k < ranges.length; k++) {
            chunks.push(engine.evaluate(w.params, w.state, await rows(k)));
          }
          return { header: { kind: "eval", ...base, chunks } };
        }
        const parts = [];
        for (let k = 0; k < ranges.length; k++) parts.push(engine.predict(w.params, w.state, await rows(k)));
        const outputs = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          outputs.set(p, o);
          o += p.length;
        }
        return { header: { kind: "predict", ...base, length: outputs.length }, body: outputs };
      }
      case "leave":
        this.#ended("ended");
        return { header: { kind: "leave", ...base } };
    }
  }

  /**
   * Takes a dataset request: a probe is answered from the cache; a part is kept until the last part
   * of the dataset arrived. True when the worker holds the dataset.
   */
  #onData(header: Extract<WorkRequest, { kind: "data" }>, body: Uint8Array): boolean {
    const cached = this.cache.get(header.hash);
    if (cached) {
      this.#datasets.set(header.name, cached);
      return true;
    }
    if (header.probe) return false;
    if (this.#arriving?.hash !== header.hash || header.offset === 0) {
      this.#arriving = { hash: header.hash, body: new Uint8Array(header.total), received: 0 };
    }
    const arriving = this.#arriving;
    const bytes = body.byteLength;
    if (header.offset !== arriving.received || header.offset + bytes > header.total) {
      this.#arriving = undefined;
      throw new RangeError(
        `Cannot take bytes ${header.offset}..${header.offset + bytes} of dataset "${header.name}": ` +
          `${arriving.received} of ${header.total} arrived so far`,
      );
    }
    arriving.body.set(body, header.offset);
    arriving.received += bytes;
    if (arriving.received < header.total) return false;
    this.#arriving = undefined;
    const ds = decodeDataset(arriving.body, header.inputs, header.y, header.dtypes);
    this.cache.set(header.hash, ds);
    this.#datasets.set(header.name, ds);
    return true;
  }

  /**
   * Opens a dataset from the files its spec names. A worker that cannot (a volume not mounted, files
   * that differ) says why, naming the path and this host, and leaves the job: it is not sent the data.
   */
  #onFiles(header: Extract<WorkRequest, { kind: "files" }>): void {
    try {
      const previous = this.#datasets.get(header.name);
      if (previous) closeDataset(previous);
      this.#datasets.set(header.name, new PrefetchingReader(header.spec));
    } catch (error) {
      console.error(`Worker ${this.opts.name}: leaving job ${this.spec.job}: ${reason(error)}`);
      setTimeout(() => this.#ended("refused"), 0);
      throw error;
    }
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** This host's first non-loopback IPv4 address (where ring neighbours on other hosts dial), or its name. */
function hostAddress(): string {
  try {
    const found = Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."));
    if (found) return found.address;
  } catch {
    // No permission to list interfaces.
  }
  return Deno.hostname();
}
