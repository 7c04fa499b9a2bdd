/**
 * The distributed {@link WorkerPool}: N worker processes compute slices of each step. NATS is the
 * control plane (joins, manifests, heartbeats, the end of the job); bulk data (weights, gradients,
 * slice exchanges, datasets) goes over the data plane, a direct connection from each worker to the
 * coordinator, or through NATS for workers that cannot reach it (`transport`).
 *
 * - roster.ts: who works (joins, manifests, admissions at step boundaries, drops);
 * - step_runner.ts: steps, evaluations and predictions over the members' links (slices, deadlines,
 *   retries);
 * - direct_link.ts / nats_link.ts: one worker's link; sync_hub.ts: the slice exchange;
 * - bootstrap.ts: the server, the connection and the data-plane listener.
 *
 * Workers join at step boundaries (a restarted pod, a scale-up up to `maxWorkers`) after the
 * handshake and the datasets reached them. Below `minWorkers` the pool pauses at a step boundary
 * until enough are back, or throws a {@link NotEnoughWorkersError}. A heartbeat on
 * `shoal.<job>.heartbeat` lists the members, so a dropped worker that comes back rejoins and a worker
 * whose coordinator vanished leaves. When the NATS connection drops, both sides reconnect; requests
 * over NATS in flight run again under new weights (version), and no optimizer update is applied twice.
 * A worker's data connection that ends drops the worker (it joins again with a new one).
 *
 * @module
 */
import type { Msg } from "npm:nats@2.29.3";
import type { Engine, EvalResult, SliceResult } from "../../shared/model/mod.ts";
import {
  decodeMessage,
  encodeMessage,
  type FloatEncoding,
  type NatsAuth,
  publishLarge,
  serve,
  type Service,
  tuneAllocator,
} from "../../shared/io/nats/mod.ts";
import {
  type FrameChannel,
  SHARED_EXCHANGE_BYTES,
  SharedExchangeArea,
  sharedMemoryAvailable,
  SharedRegion,
} from "../../shared/io/data_plane/mod.ts";
import {
  type Allreduce,
  AllreduceSchema,
  DataFrame,
  encodeDataset,
  encodeWeights,
  type EndHeader,
  type Heartbeat,
  type JobSpec,
  JoinRequest,
  ReadyRequest,
  type ShippedDataset,
  type Transport,
  type WorkRequest,
} from "../../shared/io/protocol/mod.ts";
import type { Dataset } from "../data.ts";
import type { Dataset as RowDataset, DatasetSpec } from "../../shared/io/dataset/mod.ts";
import { DatasetError } from "../../shared/io/dataset_error.ts";
import { launchWorkers, type LocalWorkers } from "../launcher.ts";
import type { PoolCloseOutcome, StepRequest, WorkerPool } from "../pool.ts";
import {
  type ControlPlane,
  type DataPlane,
  type DataTlsFiles,
  startControlPlane,
  startDataPlane,
} from "./bootstrap.ts";
import { DirectLink } from "./direct_link.ts";
import { consoleListener, PoolEvents, type PoolListener } from "./events.ts";
import type { WorkerLink } from "./links.ts";
import { NatsControl, RECONNECT_GRACE_MS } from "./nats_control.ts";
import { NatsLink } from "./nats_link.ts";
import { type Joiner, type Member, Roster } from "./roster.ts";
import { settleAll, StepRunner, type StepTimings } from "./step_runner.ts";
import { SyncHub } from "./sync_hub.ts";
import { chooseAllreduce, RING_PORT_FIX } from "./allreduce.ts";

/** How to reach or start the workers. */
export interface DistributedPoolOptions {
  /** Workers to wait for (external) or to spawn (embedded). */
  workers: number;
  /** An existing server; without it an embedded nats-server is started with local workers. */
  nats?: string;
  /** Credentials and TLS files of the coordinator for `nats`; see shared/io/nats/auth.ts. */
  auth?: NatsAuth;
  /** GPU ids: one local worker per id, with CUDA_VISIBLE_DEVICES set. */
  gpus?: number[];
  backend: string;
  /**
   * How bulk data travels: `direct` over the data plane (a worker that cannot reach it is refused),
   * `nats` through the server, `auto` direct where a worker reaches the data plane and NATS otherwise.
   * @default "auto"
   */
  transport?: Transport;
  /**
   * `HOST:PORT` the data plane listens on (TCP; port 0 picks a free one).
   * @default "127.0.0.1:0" with the embedded server, "0.0.0.0:0" with an existing one
   */
  dataListen?: string;
  /** Host or `HOST:PORT` workers dial for the data plane (a Service name on Kubernetes). @default the listen address */
  dataAdvertise?: string;
  /** Also offer the data plane on a Unix socket, which workers on this host use. @default true */
  dataUnix?: boolean;
  /** Certificate and key of the data plane's TLS listener; required when the NATS connection uses TLS. */
  dataTls?: DataTlsFiles;
  /**
   * Training goes on while at least this many workers live; with fewer the pool pauses at the next
   * step boundary and waits `joinTimeoutSeconds` for workers to join, then throws a
   * {@link NotEnoughWorkersError}. @default 1
   */
  minWorkers?: number;
  /** Workers admitted at most: joiners beyond `workers` (a scale-up) are taken up to this. @default workers */
  maxWorkers?: number;
  /** Seconds to wait for all workers to join at the start, and for `minWorkers` during a pause. @default 60 */
  joinTimeoutSeconds?: number;
  /**
   * A step's deadline for one worker is this factor times its slowest recent round (scaled to the
   * slice's rows), at least `stepTimeoutFloorSeconds`, at most `requestTimeoutSeconds`. A worker's
   * first request of a kind uses what it measured at setup instead. @default 5
   */
  stepTimeoutFactor?: number;
  /** Shortest step deadline, in seconds. @default 3 */
  stepTimeoutFloorSeconds?: number;
  /** Seconds between heartbeats to the workers (they also carry the membership). @default 1 */
  heartbeatSeconds?: number;
  /** Heartbeats a worker may miss, while connected, before it leaves the job as vanished. @default 10 */
  heartbeatMisses?: number;
  /**
   * How gradients are reduced: `star` at the coordinator (its link carries 2·N·S bytes per step for
   * N workers and S model bytes), `ring` among the workers over the data plane (a reduce-scatter,
   * one shard each to the coordinator, the weights down a chain of workers: about 2·S on the
   * coordinator's link whatever N is), or `auto`, which picks per step (coordinator/distributed/
   * allreduce.ts). A step whose workers cannot all take part in a ring (a worker on NATS, or one
   * without a ring certificate on a TLS data plane: `--ring-tls-cert`) runs on the star. @default "star"
   */
  allreduce?: Allreduce;
  /** Gradient encoding on the wire. @default "f32" */
  gradEncoding?: FloatEncoding;
  /** Job id carried by every subject. @default random */
  job?: string;
  /** Seconds one worker may take for dataset shipping, and the longest step deadline. @default 120 */
  requestTimeoutSeconds?: number;
  /** Largest message of the embedded server, in bytes. @default 16 MiB */
  maxPayload?: number;
  /** Extra command-line arguments per spawned worker. */
  workerArgs?: (string[] | undefined)[];
  /**
   * The module spawned workers run instead of worker/main.ts: a program that wraps the worker process
   * (worker/process.ts) and takes the same arguments, e.g. a test harness that injects faults.
   */
  workerEntry?: string;
  /** Listeners of the pool's events; the console listener is added unless `quiet`. */
  listeners?: PoolListener[];
  /** No console listener (events still reach `listeners`). @default false */
  quiet?: boolean;
  /**
   * Ends the waits for workers and for the server (the join at the start, a `minWorkers` pause, a
   * reconnect) when aborted, with a {@link StoppedWaitingError}: a SIGTERM during a pause stops the run
   * at once instead of after `joinTimeoutSeconds`.
   */
  signal?: AbortSignal;
}

/** A wait for workers or for the server ended because the pool's `signal` was aborted. */
export class StoppedWaitingError extends Error {
  override name = "StoppedWaitingError";
}

/**
 * Raised when fewer than `minWorkers` workers live and not enough joined within
 * `joinTimeoutSeconds`. The step it names did not run: the model holds the weights after step
 * `step - 1`, so a caller can write a checkpoint and resume there.
 */
export class NotEnoughWorkersError extends Error {
  override name = "NotEnoughWorkersError";
  constructor(
    message: string,
    /** Workers live when the wait ended. */
    readonly workerCount: number,
    /** `minWorkers`. */
    readonly needed: number,
    /** The step that could not run. */
    readonly step: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** An authenticated `work` connection before its worker's manifest arrives. */
interface PendingChannel {
  channel: FrameChannel;
  address: string;
  /** Settles when the hello exchange ended: with the worker's gradient region when both sides share memory. */
  hello: Promise<{ grads: SharedRegion; exchange: boolean } | undefined>;
}

/** Milliseconds a worker of a ring has to answer a probe when a member missed its deadline. */
const PROBE_TIMEOUT_MS = 1000;

/** Milliseconds a worker has for its hello on a new `work` connection. */
const HELLO_TIMEOUT_MS = 5000;

/** Bytes of a dataset sent in one request over the data plane. */
const DATA_PART_BYTES = 16 * 1024 * 1024;
/** Largest frame body the coordinator reads from an authenticated worker, at least. */
const MIN_FRAME_BYTES = 64 * 1024 * 1024;

/** Starts (or joins) the workers and returns a pool bound to the engine's model and loss. */
export async function createDistributedPool(
  engine: Engine,
  opts: DistributedPoolOptions,
): Promise<DistributedPool> {
  return await DistributedPool.create(engine, opts);
}

/** See the module doc and {@link createDistributedPool}. */
export class DistributedPool implements WorkerPool {
  readonly job: string;
  readonly events: PoolEvents;
  readonly #engine: Engine;
  readonly #opts: DistributedPoolOptions;
  readonly #count: number;
  readonly #control: NatsControl;
  readonly #plane: ControlPlane;
  #data: DataPlane | undefined;
  readonly #roster: Roster;
  readonly #runner: StepRunner;
  readonly #hub: SyncHub;
  readonly #timeoutMs: number;
  #local: LocalWorkers | undefined;
  /** Authenticated `work` connections of workers whose manifest has not arrived yet, and their hello. */
  readonly #channels = new Map<string, PendingChannel>();
  /** The region weights are written into for workers on this host (2 slots), made on first use. */
  #weightsRegion: SharedRegion | undefined;
  /** The slice-exchange area of the workers on this host (shared_exchange.ts), for BatchNorm models. */
  #exchangeRegion: SharedRegion | undefined;
  /** Datasets shipped as floats, or opened by each worker from the files a spec names. */
  readonly #datasets = new Map<string, ShippedDataset | FileDataset>();
  readonly #lengths = new Map<string, number>();
  readonly #services: Service[] = [];
  #version = 0;
  #closed = false;
  /** The reduction of the latest attempt and its workers, to announce a change once. */
  #reduction = "";
  /**
   * Workers kept out of rings, by `name addresses`, and why: another worker could not dial their ring
   * address. A worker that joins again with other addresses is tried again.
   */
  readonly #ringUnreachable = new Map<string, string>();
  /** Aborted when the pool closes: ends dataset shipping to joiners. */
  readonly #closing = new AbortController();
  /** True while `create` waits for the first workers: setup failures end the start. */
  #starting = true;
  #failure: Error | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  private constructor(
    engine: Engine,
    opts: DistributedPoolOptions,
    job: string,
    count: number,
    plane: ControlPlane,
    events: PoolEvents,
  ) {
    this.#engine = engine;
    this.#opts = opts;
    this.job = job;
    this.#count = count;
    this.#plane = plane;
    this.events = events;
    this.#timeoutMs = (opts.requestTimeoutSeconds ?? 120) * 1000;
    this.#control = new NatsControl(plane.nc, job, events);
    this.#roster = new Roster({
      job,
      maxWorkers: opts.maxWorkers ?? count,
      layouts: { params: engine.network.paramLayout, state: engine.network.stateLayout },
      events,
    });
    this.#runner = new StepRunner(
      this.#roster,
      engine,
      {
        boundary: () => this.#boundary(),
        recover: () => this.#recover(),
        publishWeights: (params, state, ring) => this.#publishWeights(params, state, ring),
        ringFor: (members) => this.#ringFor(members),
        ringUnreachable: (member, peer) => this.#onRingUnreachable(member, peer),
        abortRing: (version, reason, members) => {
          for (const m of members) if (m.link instanceof DirectLink) m.link.abortRing(version, reason);
        },
        probe: (member) =>
          member.link instanceof DirectLink ? member.link.probe(PROBE_TIMEOUT_MS) : Promise.resolve(true),
        beginExchange: (version, workers) =>
          this.#hub.begin(
            version,
            workers,
            workers.every((name) => {
              const link = this.#roster.live.find((m) => m.name === name)?.link;
              return link instanceof DirectLink && link.sharesExchange;
            }),
          ),
        abortExchange: (version, reason) => this.#hub.abort(version, reason),
      },
      events,
      {
        job,
        gradEncoding: opts.gradEncoding ?? "f32",
        stepTimeoutFactor: opts.stepTimeoutFactor ?? 5,
        stepTimeoutFloorMs: (opts.stepTimeoutFloorSeconds ?? 3) * 1000,
        requestTimeoutMs: this.#timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
    );
    this.#hub = new SyncHub(this.#control, events);
  }

  /** Validates the options, starts what is needed and waits until every worker reported its model. */
  static async create(engine: Engine, opts: DistributedPoolOptions): Promise<DistributedPool> {
    const count = validate(opts);
    tuneAllocator();
    const job = opts.job ?? crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    const events = new PoolEvents([...(opts.quiet ? [] : [consoleListener(job)]), ...(opts.listeners ?? [])]);
    const plane = await startControlPlane({
      job,
      ...(opts.nats !== undefined ? { nats: opts.nats } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      maxPayload: opts.maxPayload ?? 16 * 1024 * 1024,
    });
    const transport = opts.transport ?? "auto";
    const modelBytes = 4 * (engine.network.params.length + engine.network.state.length);
    const pool = new DistributedPool(engine, opts, job, count, plane, events);
    try {
      pool.#data = await startDataPlane({
        job,
        transport,
        listen: opts.dataListen ?? (opts.nats === undefined ? "127.0.0.1:0" : "0.0.0.0:0"),
        ...(opts.dataAdvertise !== undefined ? { advertise: opts.dataAdvertise } : {}),
        unix: opts.dataUnix ?? true,
        ...(opts.dataTls ? { tls: opts.dataTls } : {}),
        natsTls: plane.tls,
        maxBodyBytes: Math.max(MIN_FRAME_BYTES, 2 * modelBytes + (1 << 20)),
        refusal: (worker) => pool.#roster.dataRefusal(worker),
        onChannel: (channel, worker, role) => pool.#onChannel(channel, worker, role),
        onRefused: (peer, reason) => events.emit({ type: "data-refused", peer, reason }),
      });
      pool.#start();
      if (opts.nats === undefined) {
        pool.#local = await launchWorkers({
          url: plane.url,
          job,
          count,
          ...(opts.gpus ? { gpus: opts.gpus } : {}),
          backend: opts.backend,
          env: plane.workerEnv,
          ...(opts.workerArgs ? { extraArgs: opts.workerArgs } : {}),
          ...(opts.workerEntry ? { entry: opts.workerEntry } : {}),
        });
      }
      await pool.#awaitFirstWorkers();
      return pool;
    } catch (error) {
      await pool.#shutDown("the start failed");
      throw error;
    }
  }

  get workers(): number {
    return this.#roster.live.length;
  }

  get backend(): string {
    return [...new Set(this.#roster.live.map((w) => w.backend))].join(",");
  }

  /** Names, devices and links of the live workers, in slice order. */
  get liveWorkers(): readonly Readonly<Member>[] {
    return this.#roster.live;
  }

  /** Process ids of the spawned workers (empty with external workers). */
  get localPids(): number[] {
    return this.#local?.workers.map((w) => w.pid) ?? [];
  }

  /** Process id of the embedded server, if any. */
  get serverPid(): number | undefined {
    return this.#plane.server?.pid;
  }

  /** The data plane's announced addresses (empty with `transport: "nats"`). */
  get dataAddresses(): readonly string[] {
    return this.#data?.listener.addresses ?? [];
  }

  /** The job's data-plane secret, which joined workers receive (for tests of the handshake). */
  get dataSecret(): string | undefined {
    return this.#data?.secret;
  }

  /** Median phase timings of the training steps so far, or of those after the first `from`. */
  timings(from = 0): StepTimings {
    return this.#runner.timings(from);
  }

  /** The job as workers receive it on joining. */
  #spec(): JobSpec {
    return {
      job: this.job,
      model: this.#engine.network.toConfig(),
      loss: this.#engine.spec.loss,
      metrics: this.#engine.spec.metrics.map((m) => ({ ...m })),
      seed: this.#engine.spec.seed,
      ...(this.#engine.spec.weightedLabels ? { weightedLabels: this.#engine.spec.weightedLabels } : {}),
      backend: this.#opts.backend,
      gradEncoding: this.#opts.gradEncoding ?? "f32",
      transport: this.#data ? this.#opts.transport ?? "auto" : "nats",
      allreduce: this.#opts.allreduce ?? "star",
      ...(this.#data
        ? { dataPlane: { addresses: [...this.#data.listener.addresses], secret: this.#data.secret } }
        : {}),
    };
  }

  /** Serves joins and manifests, the slice exchange and the heartbeat. */
  #start(): void {
    const spec = this.#spec();
    const { nc, subjects } = this.#control;
    this.#services.push(
      serve(nc, subjects.join, (msg) => {
        const { header } = decodeMessage(msg.data, JoinRequest);
        const reason = this.#roster.join(header, this.#closed);
        msg.respond(
          encodeMessage(reason === undefined ? { accepted: true, spec } : { accepted: false, reason }),
        );
      }),
      serve(nc, subjects.ready, async (msg: Msg) => {
        const { header } = decodeMessage(msg.data, ReadyRequest);
        msg.respond(encodeMessage({ ok: await this.#onReady(header) }));
      }),
    );
    this.#hub.start();
    this.#heartbeat = setInterval(() => {
      try {
        this.#beat();
        if (!this.#starting) this.#hello();
      } catch (error) {
        this.events.emit({ type: "warning", message: `heartbeat failed: ${error}` });
      }
    }, (this.#opts.heartbeatSeconds ?? 1) * 1000);
  }

  /** An authenticated data-plane connection: `sync` ones serve the slice exchange, `work` ones await the manifest. */
  #onChannel(channel: FrameChannel, worker: string, role: "work" | "sync"): void {
    if (role === "sync") return this.#hub.addChannel(worker, channel);
    this.#channels.get(worker)?.channel.close("replaced by a newer connection");
    this.#channels.set(worker, { channel, address: channel.peer, hello: this.#greet(channel) });
    void channel.ended.then(() => {
      if (this.#channels.get(worker)?.channel === channel) this.#channels.delete(worker);
    });
  }

  /**
   * The hello exchange of a new `work` connection (protocol.ts `hello`): a worker on this host offers
   * its gradient region and gets the weights region; its answer says whether it mapped it. Resolves
   * with the worker's region when both share memory; closes the connection when no hello comes.
   */
  async #greet(channel: FrameChannel): Promise<{ grads: SharedRegion; exchange: boolean } | undefined> {
    const timer = setTimeout(() => channel.close(`no hello within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    let grads: SharedRegion | undefined;
    try {
      const offer = DataFrame.safeParse((await channel.next())?.header);
      if (!offer.success || offer.data.t !== "hello") {
        channel.close("the worker's first frame is not a hello");
        return undefined;
      }
      const spec = offer.data.shm;
      const weights = spec ? this.#sharedWeights() : undefined;
      if (spec && weights) {
        try {
          grads = SharedRegion.open(spec.path, spec.bytes);
        } catch (error) {
          this.events.emit({
            type: "warning",
            message: `shared memory with a worker failed: ${reasonOf(error)}`,
          });
        }
      }
      const area = this.#exchangeRegion;
      await channel.send({
        t: "hello",
        ...(grads && weights ? { shm: { path: weights.path, bytes: weights.bytes.byteLength } } : {}),
        ...(grads && weights && area ? { sync: { path: area.path, bytes: area.bytes.byteLength } } : {}),
      });
      if (!grads) return undefined;
      const ack = DataFrame.safeParse((await channel.next())?.header);
      if (ack.success && ack.data.t === "hello" && ack.data.shm) {
        return { grads, exchange: ack.data.sync === "mapped" };
      }
      grads.close();
      return undefined;
    } catch {
      grads?.close();
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The weights region, made on first use; `undefined` where shared memory cannot be used. */
  #sharedWeights(): SharedRegion | undefined {
    if (this.#weightsRegion || !sharedMemoryAvailable()) return this.#weightsRegion;
    const net = this.#engine.network;
    const slotBytes = Math.ceil((4 * (net.params.length + net.state.length)) / 8) * 8;
    try {
      this.#weightsRegion = SharedRegion.create(`shoal-${this.job}-weights`, 2 * slotBytes);
      if (net.exchangesBetweenSlices) {
        this.#exchangeRegion = SharedRegion.create(`shoal-${this.job}-sync`, SHARED_EXCHANGE_BYTES);
        this.#hub.useSharedArea(new SharedExchangeArea(this.#exchangeRegion.bytes));
      }
    } catch (error) {
      this.events.emit({ type: "warning", message: `no shared memory for weights: ${reasonOf(error)}` });
    }
    return this.#weightsRegion;
  }

  /** The link of a worker whose manifest arrived, or why it has none. */
  async #linkFor(header: ReadyRequest): Promise<WorkerLink | string> {
    if (header.link === "nats") {
      if (this.#data && this.#opts.transport === "direct") {
        return `it cannot reach the data plane (${
          header.linkNote ?? "no reason given"
        }) and the job's transport is direct: ` +
          `open ${this.#data.listener.addresses.join(", ")} to it, or use --transport auto`;
      }
      return new NatsLink(this.#control, header.worker);
    }
    const pending = this.#channels.get(header.worker);
    if (!pending) return `it reported a data-plane link, but no authenticated connection of it is open`;
    const shared = await pending.hello;
    if (this.#channels.get(header.worker) !== pending || pending.channel.isClosed) {
      shared?.grads.close();
      return `its data-plane connection closed before its manifest arrived`;
    }
    this.#channels.delete(header.worker);
    const link: DirectLink = new DirectLink(
      pending.channel,
      pending.address,
      (reason) => this.#onLinkEnded(header.worker, link, reason),
      shared,
    );
    return link;
  }

  /** A direct link ended: a live member is dropped at once, a joiner forgotten. */
  #onLinkEnded(worker: string, link: WorkerLink, reason: string): void {
    if (this.#closed) return;
    this.events.emit({ type: "data-lost", worker, reason });
    const member = this.#roster.live.find((m) => m.link === link);
    if (member) this.#roster.drop(member, reason, this.#runner.currentStep);
    else if (this.#roster.joiners.get(worker)?.member?.link === link) this.#roster.forget(worker);
  }

  /** Checks a joiner's manifest and link; on success its datasets start to travel. Returns the ack. */
  async #onReady(header: ReadyRequest): Promise<boolean> {
    const link = header.error ? undefined : await this.#linkFor(header);
    const result = this.#roster.ready(
      header,
      typeof link === "string" ? undefined : link,
      typeof link === "string" ? link : undefined,
    );
    if (result instanceof Error) {
      if (this.#starting && this.#roster.refused.has(header.worker)) this.#failure ??= result;
      if (typeof link === "object") link?.close("refused");
      return false;
    }
    // Before the ack: the worker learns the heartbeat's interval even if the coordinator dies next.
    this.#beat();
    void this.#prepare(result);
    return true;
  }

  /** Ships every dataset to a joiner; a joiner lost on the way is forgotten (it may join again). */
  async #prepare(joiner: Joiner): Promise<void> {
    const member = joiner.member!;
    try {
      if (await this.#catchUp(joiner)) joiner.prepared = true;
      else this.#roster.forget(member.name);
    } catch (error) {
      this.#roster.forget(member.name);
      this.events.emit({
        type: "warning",
        message: `worker ${member.name} could not join: ${reasonOf(error)}`,
      });
    }
  }

  /** Ships the datasets a joiner lacks; false when it was lost. */
  async #catchUp(joiner: Joiner): Promise<boolean> {
    for (;;) {
      const missing = [...this.#datasets].filter(([name]) => !joiner.shipped.has(name));
      if (missing.length === 0) return true;
      for (const [name, data] of missing) {
        const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#timeoutMs)]);
        if (!await this.#ship(joiner.member!, name, data, signal)) return false;
        joiner.shipped.add(name);
      }
    }
  }

  /** Publishes the heartbeat (and forgets joiners that never reported their model). */
  #beat(): void {
    if (this.#closed || !this.#control.connected) return;
    this.#roster.forgetStale(this.#timeoutMs);
    const heartbeat: Heartbeat = {
      job: this.job,
      step: Math.max(0, this.#runner.currentStep),
      members: this.#roster.members(),
      intervalMs: (this.#opts.heartbeatSeconds ?? 1) * 1000,
      misses: this.#opts.heartbeatMisses ?? 10,
    };
    this.#control.nc.publish(this.#control.subjects.heartbeat, encodeMessage(heartbeat));
  }

  /** Announces the job to idle workers when it takes more. */
  #hello(): void {
    if (!this.#roster.wantsMore()) return;
    this.#control.nc.publish(
      this.#control.subjects.hello,
      encodeMessage({ job: this.job, wanted: this.#roster.maxWorkers }),
    );
  }

  /** How to start a worker for this job, for messages. */
  #startHint(): string {
    return `start one with \`deno task worker --nats ${this.#plane.url}\` (add --job ${this.job} to bind it to this job)`;
  }

  /** Announces the job until `count` workers are ready, or fails with the reason. */
  async #awaitFirstWorkers(): Promise<void> {
    const count = this.#count;
    for (const w of this.#local?.workers ?? []) {
      void w.status.then((s) => {
        const how = s.signal ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
        if (this.#starting) {
          this.#failure ??= new Error(`Worker ${w.name} (pid ${w.pid}) ${how} while joining`);
        }
        const live = this.#roster.live.find((l) => l.name === w.name);
        if (live && !this.#closed) this.#roster.drop(live, `its process ${how}`, this.#runner.currentStep);
      });
    }
    const prepared = () => [...this.#roster.joiners.values()].filter((j) => j.prepared).length;
    const timeoutMs = (this.#opts.joinTimeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeoutMs;
    try {
      while (prepared() < count && !this.#failure && Date.now() < deadline) {
        this.#checkStop(`waiting for ${count} workers to join`);
        this.#control.nc.publish(
          this.#control.subjects.hello,
          encodeMessage({ job: this.job, wanted: count }),
        );
        await sleep(100);
      }
    } finally {
      this.#starting = false;
    }
    if (this.#failure) throw this.#failure;
    if (prepared() < count) {
      const accepted = [...this.#roster.joiners.keys()];
      throw new NotEnoughWorkersError(
        `Cannot start job ${this.job} as ${count} workers were needed and ${prepared()} joined within ${
          timeoutMs / 1000
        } s (${accepted.length} accepted: ${accepted.join(", ") || "none"}). Start workers with ` +
          `\`deno task worker --nats ${this.#plane.url}\` (add --job ${this.job} to bind one to this job), or raise joinTimeoutSeconds`,
        prepared(),
        count,
        0,
      );
    }
    await this.#admit();
    const backends = new Set(this.#roster.live.map((w) => w.backend));
    if (backends.size > 1) {
      this.events.emit({
        type: "warning",
        message: `workers run different backends: ${[...backends].join(", ")}`,
      });
    }
  }

  /** Moves prepared joiners into the live set (they take slices from now on). */
  async #admit(): Promise<void> {
    for (const [name, joiner] of [...this.#roster.joiners]) {
      if (!joiner.prepared) continue;
      const ok = await this.#catchUp(joiner).catch(() => false);
      if (!ok) {
        this.#roster.forget(name);
        continue;
      }
      this.#runner.forgetRounds(name);
      this.#roster.admit(name, this.#runner.currentStep);
    }
  }

  /** Throws a {@link StoppedWaitingError} when the pool's signal was aborted during `what`. */
  #checkStop(what: string): void {
    const signal = this.#opts.signal;
    if (!signal?.aborted) return;
    throw new StoppedWaitingError(`Stopped ${what} for job ${this.job}: ${String(signal.reason)}`, {
      cause: signal.reason,
    });
  }

  /**
   * A step boundary: admits prepared joiners, then, below `minWorkers`, waits for workers up to
   * `joinTimeoutSeconds` or throws a {@link NotEnoughWorkersError}.
   */
  async #boundary(): Promise<void> {
    this.#checkOpen();
    await this.#admit();
    const min = this.#opts.minWorkers ?? 1;
    if (this.#roster.live.length >= min) return;
    const timeoutMs = (this.#opts.joinTimeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeoutMs;
    const step = this.#runner.currentStep;
    this.events.emit({
      type: "paused",
      step,
      workers: this.#roster.live.length,
      of: this.#count,
      needed: min,
      waitSeconds: timeoutMs / 1000,
      hint: this.#startHint(),
    });
    let lastHello = 0;
    while (this.#roster.live.length < min) {
      this.#checkStop(`waiting for workers at step ${step}`);
      if (Date.now() >= deadline) {
        throw new NotEnoughWorkersError(
          `Cannot run step ${step} of job ${this.job} as ${this.#roster.live.length} worker(s) live and minWorkers is ${min}: ` +
            `none joined within ${
              timeoutMs / 1000
            } s. Start workers with \`deno task worker --nats ${this.#plane.url}\`, ` +
            "lower minWorkers or raise joinTimeoutSeconds, then resume from the last checkpoint.",
          this.#roster.live.length,
          min,
          step,
        );
      }
      if (Date.now() - lastHello >= 250 && this.#control.connected) {
        this.#hello();
        lastHello = Date.now();
      }
      await sleep(50);
      await this.#admit();
    }
    this.events.emit({ type: "resumed", step, workers: this.#roster.live.length });
  }

  /** Waits for the connection, then for each NATS-linked member to answer again (or drops it). */
  async #recover(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    while (!this.#control.connected) {
      this.#checkOpen();
      this.#checkStop("waiting for the NATS server");
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot go on with job ${this.job} as the NATS server ${this.#plane.url} was unreachable for ${
            this.#timeoutMs / 1000
          } s: check the server, then resume from the last checkpoint`,
        );
      }
      await sleep(50);
    }
    await Promise.all(this.#roster.live.map((m) => this.#awaitBack(m)));
  }

  /**
   * Probes a NATS-linked member until it is subscribed again; drops it after the reconnect grace. A
   * stop request ends the wait.
   */
  async #awaitBack(member: Member): Promise<void> {
    if (!(member.link instanceof NatsLink)) return;
    const grace = RECONNECT_GRACE_MS + this.#runner.deadlineMs(member, "train", 0);
    const until = performance.now() + grace;
    for (;;) {
      this.#checkStop(`waiting for worker ${member.name} to answer again`);
      if (await member.link.probe(250) !== "gone") return;
      if (performance.now() > until) {
        this.#roster.drop(
          member,
          `it was not back ${grace / 1000} s after the connection to the server returned`,
          this.#runner.currentStep,
        );
        return;
      }
      await sleep(100);
    }
  }

  async setData(name: string, data: Dataset): Promise<void> {
    this.#checkOpen();
    const shipped = data.source ? fileDataset(data.source) : await encodeDataset(data);
    // Joiners from now on receive it too (see #catchUp).
    this.#datasets.set(name, shipped);
    const unreadable = new Map<string, string>();
    await this.#runner.retrying(`shipping dataset "${name}"`, async (attempt) => {
      await settleAll(
        this.#roster.live.map((m) => this.#ship(m, name, shipped, attempt.signal, unreadable)),
        attempt,
      );
    });
    if ("spec" in shipped && this.#roster.live.length === 0 && unreadable.size > 0) {
      const path = shipped.spec.files[0]!.path;
      throw new DatasetError(
        path,
        `Cannot train on dataset "${name}" as no worker could open its files (${
          [...unreadable].map(([worker, error]) => `worker ${worker}: ${error}`).join("; ")
        }). Mount the dataset at the same path (${path}) on every worker's host, read-only is enough, ` +
          "or start workers where it is.",
      );
    }
    this.#lengths.set(name, data.length);
  }

  /**
   * Ships one dataset to one member: a probe first (a worker that holds it by hash answers cached),
   * then the bytes, in parts over the data plane. False when the member was lost.
   */
  async #ship(
    member: Member,
    name: string,
    data: ShippedDataset | FileDataset,
    signal: AbortSignal,
    unreadable?: Map<string, string>,
  ): Promise<boolean> {
    if ("spec" in data) return await this.#open(member, name, data, signal, unreadable);
    const total = data.body.length;
    const send = async (probe: boolean, offset: number, end: number): Promise<boolean | undefined> => {
      const header: WorkRequest = {
        kind: "data",
        job: this.job,
        name,
        hash: data.hash,
        inputs: data.inputs,
        y: data.y,
        dtypes: data.dtypes,
        probe,
        offset,
        total,
      };
      const reply = await this.#runner.request(
        member,
        header,
        probe ? undefined : data.body.subarray(offset, end),
        signal,
      );
      if (!reply) return undefined;
      const h = reply.header;
      if (h.kind === "error") {
        throw new Error(`Worker ${member.name} could not load dataset "${name}": ${h.error}`);
      }
      return h.kind === "data" && h.cached;
    };
    let cached = await send(true, 0, 0);
    const part = member.link.kind === "direct" ? DATA_PART_BYTES : Math.max(1, total);
    for (let offset = 0; cached === false; offset += part) {
      const end = Math.min(total, offset + part);
      cached = await send(false, offset, end);
      if (end >= total) break;
    }
    if (cached === undefined) return false;
    if (cached) return true;
    throw new Error(`Worker ${member.name} did not keep dataset "${name}" (${data.hash})`);
  }

  /**
   * Has one member open a file-backed dataset itself; only row indices travel afterwards. A worker
   * that cannot open the files answers why (naming the path and its host) and leaves the job: it is
   * refused for good (never sent the data instead), and what it said is added to `unreadable`. False
   * when the member was lost or refused.
   */
  async #open(
    member: Member,
    name: string,
    data: FileDataset,
    signal: AbortSignal,
    unreadable?: Map<string, string>,
  ): Promise<boolean> {
    const header: WorkRequest = { kind: "files", job: this.job, name, spec: data.spec };
    const reply = await this.#runner.request(member, header, undefined, signal);
    if (!reply) return false;
    if (reply.header.kind === "error") {
      const error = reply.header.error;
      unreadable?.set(member.name, error);
      this.#roster.refuse(member, `Worker ${member.name} could not open dataset "${name}": ${error}`);
      return false;
    }
    return true;
  }

  trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    this.#checkOpen();
    return this.#runner.trainStep(data, req);
  }

  evaluate(data: string, params: Float32Array, state: Float32Array, batchSize: number): Promise<EvalResult> {
    this.#checkOpen();
    return this.#runner.evaluate(data, this.#length(data), params, state, batchSize);
  }

  predict(data: string, params: Float32Array, state: Float32Array, batchSize: number): Promise<Float32Array> {
    this.#checkOpen();
    return this.#runner.predict(data, this.#length(data), params, state, batchSize);
  }

  #length(data: string): number {
    const length = this.#lengths.get(data);
    if (length === undefined) throw new Error(`No dataset named ${data} was set on the pool`);
    return length;
  }

  /**
   * True when an attempt on `members` reduces on a ring (allreduce.ts); announces a change of the
   * reduction or of its workers as an event.
   */
  #ringFor(members: readonly Member[]): boolean {
    const net = this.#engine.network;
    const choice = chooseAllreduce(
      this.#opts.allreduce ?? "star",
      members.map((m) => ({
        name: m.name,
        ringAddresses: m.ringAddresses,
        sharesMemory: m.link instanceof DirectLink && m.link.sharesMemory,
        unreachable: this.#ringUnreachable.get(ringKey(m.name, m.ringAddresses)),
      })),
      4 * (net.params.length + net.state.length),
      this.#opts.dataTls !== undefined,
    );
    const key = `${choice.use} ${members.map((m) => m.name).join(",")}`;
    if (key !== this.#reduction && (this.#opts.allreduce ?? "star") !== "star") {
      this.#reduction = key;
      this.events.emit({
        type: "allreduce",
        use: choice.use,
        step: this.#runner.currentStep,
        workers: members.length,
        reason: choice.reason,
      });
    }
    return choice.use === "ring";
  }

  /**
   * A worker could not dial `peer`'s ring address: `peer` is kept out of rings from now on (the step
   * runs again on the star). With `allreduce: "ring"` a warning names the fix.
   */
  #onRingUnreachable(member: Member, peer: { worker: string; addresses: string[]; reason: string }): void {
    const key = ringKey(peer.worker, peer.addresses);
    if (this.#ringUnreachable.has(key)) return;
    const why = `worker ${peer.worker}'s ring address ${
      peer.addresses.join(", ")
    } cannot be reached from worker ${member.name} (${peer.reason})`;
    this.#ringUnreachable.set(key, why);
    if (this.#opts.allreduce !== "ring") return;
    this.events.emit({
      type: "warning",
      message: `allreduce is ring, but ${why}: steps with worker ${peer.worker} run on the star. To fix it, ${
        this.#opts.dataTls
          ? "give that worker a ring certificate (--ring-tls-cert) valid for that address and signed by the CA " +
            "the workers trust (--nats-tls-ca), and "
          : ""
      }${RING_PORT_FIX}`,
    });
  }

  /**
   * Bytes the coordinator read and wrote on its workers' data-plane connections so far (live direct
   * links only): what its link carries, for measurements.
   */
  traffic(): { read: number; written: number } {
    let read = 0, written = 0;
    for (const m of this.#roster.live) {
      if (!(m.link instanceof DirectLink)) continue;
      read += m.link.traffic.read;
      written += m.link.traffic.written;
    }
    return { read, written };
  }

  /**
   * Sends params ‖ state to every live member: over each direct link (in order before the requests
   * that name this version), and once through the server for NATS-linked members. With `ring`, once,
   * to the ring's first member, which forwards them down the chain.
   */
  async #publishWeights(
    params: Float32Array,
    state: Float32Array,
    ring?: readonly Member[],
  ): Promise<number> {
    const version = ++this.#version;
    const { header, body } = encodeWeights(this.job, version, params, state);
    if (ring) {
      const chain = ring.map((m) => ({ name: m.name, addresses: [...m.ringAddresses!] }));
      const head = ring[0]!.link as DirectLink;
      // Not awaited: a stopped worker does not read, and its request's deadline decides.
      void head.sendChain(header, params, state, chain).catch(() => {});
      return version;
    }
    const live = this.#roster.live;
    // Workers on this host read the weights where they were written, in one of two slots: a worker
    // still reading the version before sees its slot unchanged.
    let slot: number | undefined;
    const region = this.#weightsRegion;
    if (region && live.some((m) => m.link instanceof DirectLink && m.link.sharesMemory)) {
      slot = version % 2;
      const slotBytes = region.bytes.byteLength / 2;
      let offset = slot * slotBytes;
      for (const part of [params, state]) {
        region.bytes.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offset);
        offset += part.byteLength;
      }
    }
    let nats = false;
    for (const member of live) {
      // Not awaited: a stopped worker does not read, and its request's deadline decides.
      if (member.link.sendWeights) void member.link.sendWeights(header, body, slot).catch(() => {});
      else nats = true;
    }
    if (nats) await publishLarge(this.#control.nc, this.#control.subjects.weights, header, body);
    return version;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`Cannot use the pool of job ${this.job} as it was closed`);
  }

  /**
   * Ends the job on the workers, closes the connections, stops spawned workers and the embedded server.
   * A `stopped` run lets its workers go without ending the job for them: a worker bound to the job
   * waits for its rerun.
   */
  async close(outcome: PoolCloseOutcome = "finished"): Promise<void> {
    if (this.#closed) return;
    await this.#shutDown(outcome === "finished" ? "closed" : "stopped");
  }

  async #shutDown(reason: string): Promise<void> {
    this.#closed = true;
    this.#closing.abort(new Error(`job ${this.job} ${reason}`));
    clearInterval(this.#heartbeat);
    try {
      this.#control.nc.publish(
        this.#control.subjects.end,
        encodeMessage({ job: this.job, reason } satisfies EndHeader),
      );
      const ended = reason !== "stopped";
      for (const member of this.#roster.live) {
        member.link.close(`job ${this.job} ${ended ? "ended" : "stopped"}`, ended);
      }
      for (const { channel } of this.#channels.values()) channel.close(`job ${this.job} ended`);
      await Promise.all(this.#services.map((s) => s.stop()));
      await this.#hub.close();
      await this.#data?.listener.close();
      this.#weightsRegion?.close();
      this.#exchangeRegion?.close();
      await this.#control.nc.drain();
    } catch (error) {
      this.events.emit({ type: "warning", message: `closing the connections failed: ${error}` });
    } finally {
      await this.#local?.stop();
      await this.#plane.server?.stop();
    }
  }
}

function validate(opts: DistributedPoolOptions): number {
  const count = opts.gpus ? opts.gpus.length : opts.workers;
  if (!Number.isInteger(opts.workers) || opts.workers < 1) {
    throw new RangeError(
      `Cannot distribute as workers must be a positive integer: received workers=${opts.workers}`,
    );
  }
  if (opts.gpus && opts.gpus.length !== opts.workers) {
    throw new RangeError(
      `Cannot distribute as gpus lists ${opts.gpus.length} GPUs for workers=${opts.workers}: one worker runs per GPU, ` +
        "so pass workers equal to the number of GPUs",
    );
  }
  if (opts.gpus && opts.nats !== undefined) {
    throw new TypeError(
      "Cannot combine gpus with nats: gpus spawns local workers, nats waits for external ones",
    );
  }
  if (opts.allreduce !== undefined && !AllreduceSchema.safeParse(opts.allreduce).success) {
    throw new RangeError(
      `Cannot distribute as allreduce must be star, ring or auto: received allreduce=${
        JSON.stringify(opts.allreduce)
      }`,
    );
  }
  if (opts.allreduce === "ring" && opts.transport === "nats") {
    throw new RangeError(
      "Cannot reduce on a ring with transport=nats: the workers of a ring send each other shards over the data plane. " +
        "Use transport auto or direct, or allreduce star",
    );
  }
  if (opts.transport !== undefined && !["auto", "direct", "nats"].includes(opts.transport)) {
    throw new RangeError(
      `Cannot distribute as transport must be auto, direct or nats: received transport=${
        JSON.stringify(opts.transport)
      }`,
    );
  }
  const min = opts.minWorkers ?? 1;
  if (!Number.isInteger(min) || min < 1 || min > count) {
    throw new RangeError(
      `Cannot distribute as minWorkers must be in [1, ${count}]: received minWorkers=${min}`,
    );
  }
  const max = opts.maxWorkers ?? count;
  if (!Number.isInteger(max) || max < count) {
    throw new RangeError(
      `Cannot distribute as maxWorkers must be an integer >= workers (${count}): received maxWorkers=${max}`,
    );
  }
  const positive = {
    joinTimeoutSeconds: opts.joinTimeoutSeconds,
    requestTimeoutSeconds: opts.requestTimeoutSeconds,
    stepTimeoutFactor: opts.stepTimeoutFactor,
    stepTimeoutFloorSeconds: opts.stepTimeoutFloorSeconds,
    heartbeatSeconds: opts.heartbeatSeconds,
    heartbeatMisses: opts.heartbeatMisses,
  };
  for (const [key, value] of Object.entries(positive)) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`Cannot distribute as ${key} must be a positive number: received ${key}=${value}`);
    }
  }
  return count;
}

/** The key of a worker's ring addresses in the pool's set of unreachable ones. */
function ringKey(name: string, addresses: readonly string[] | undefined): string {
  return `${name} ${addresses?.join(" ") ?? ""}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A dataset every worker opens from the files its spec names. */
interface FileDataset {
  spec: DatasetSpec;
}

function fileDataset(source: RowDataset): FileDataset {
  if (!source.spec) throw new TypeError("Cannot hand workers a dataset that has neither arrays nor files");
  return { spec: source.spec };
}
