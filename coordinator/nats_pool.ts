/**
 * The NATS worker pool: N worker processes compute slices of each step. Weights travel once per step
 * on a subject every worker receives (server fan-out); each worker then gets a request with its slice's
 * row indices and answers with its gradient. Replies are checked (job, step, worker, length, finite
 * values) and a rejected or lost slice is recomputed on another worker, so a step always covers its
 * batch. Results come back in slice order, never arrival order. Protocol: shared/io/nats/protocol.ts.
 *
 * Faults: a killed worker is seen at once (its subject has no responders); a stopped or hung one
 * misses its step deadline, measured from its own recent round times. Either is dropped and its slice
 * recomputed, with the same rows and row offset, on a survivor; when the slices exchange partial
 * results mid-step (BatchNormalization over the whole batch, worker/slice_exchange.ts), the attempt is
 * aborted for all slices instead (an abort on `shoal.<job>.sync.<version>` wakes the ones waiting) and
 * the step runs again on the survivors. Workers join at step boundaries
 * (a restarted pod, a scale-up up to `maxWorkers`) after the handshake and the datasets reached
 * them. Below `minWorkers` the pool pauses at a step boundary until enough are back, or throws a
 * {@link NotEnoughWorkersError}. A heartbeat on `shoal.<job>.heartbeat` lists the members, so a
 * dropped worker that comes back rejoins and a worker whose coordinator vanished leaves. When the
 * NATS connection drops, both sides reconnect and the step in flight runs again under new weights
 * (version); a step is computed for the trainer once, so no optimizer update is applied twice.
 */
import { ErrorCode, Events, type NatsConnection, NatsError } from "npm:nats@2.29.3";
import { type Engine, type EvalResult, ModelMismatchError, type SliceResult } from "../shared/model/mod.ts";
import {
  asFloat32,
  decodeF32,
  decodeMessage,
  DEFAULT_MAX_PENDING,
  encodeMessage,
  publishLarge,
  requestLarge,
  serve,
  type Service,
  startNatsServer,
  tuneAllocator,
} from "../shared/io/nats/mod.ts";
import type { NatsServer } from "../shared/io/nats/mod.ts";
import {
  connectResilient,
  localCredentials,
  type NatsAuth,
  natsAuthEnv,
  natsServerConfig,
} from "../shared/io/nats/mod.ts";
import {
  EndHeader,
  type Heartbeat,
  type JobSpec,
  jobSubjects,
  JoinRequest,
  ReadyRequest,
  type SyncHeader,
  type WeightsHeader,
  WorkReply,
  type WorkRequest,
} from "../shared/io/nats/mod.ts";
import type { Dataset } from "./data.ts";
import { launchWorkers, type LocalWorkers } from "./launcher.ts";
import type { StepRequest, WorkerPool } from "./pool.ts";

/** How to reach or start the workers. */
export interface NatsPoolOptions {
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
   * slice's rows), at least `stepTimeoutFloorSeconds`, at most `requestTimeoutSeconds`.
   * @default 5
   */
  stepTimeoutFactor?: number;
  /** Shortest step deadline, in seconds. @default 3 */
  stepTimeoutFloorSeconds?: number;
  /** Seconds between heartbeats to the workers (they also carry the membership). @default 1 */
  heartbeatSeconds?: number;
  /** Heartbeats a worker may miss, while connected, before it leaves the job as vanished. @default 10 */
  heartbeatMisses?: number;
  /** Gradient encoding on the wire. @default "f32" */
  gradEncoding?: "f32" | "bf16";
  /** Job id carried by every subject. @default random */
  job?: string;
  /**
   * Seconds one worker may take for one request: dataset shipping, and a worker's first request of
   * a kind (before its step deadline can be measured). @default 120
   */
  requestTimeoutSeconds?: number;
  /** Largest message of the embedded server, in bytes. @default 16 MiB */
  maxPayload?: number;
  /** Extra command-line arguments per spawned worker (e.g. `["--fault", "nan-once"]` in tests). */
  workerArgs?: (string[] | undefined)[];
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

/** Milliseconds after a reconnect during which a worker with no responders is taken as not back yet. */
const RECONNECT_GRACE_MS = 5000;
/**
 * Milliseconds to wait after a worker's subject had no responders before calling the worker gone: long
 * enough for this connection to see a server shutdown that closed the worker's connection first.
 */
const NO_RESPONDERS_SETTLE_MS = 200;
/** Round times kept per worker and kind for its step deadline. */
const ROUNDS_KEPT = 20;
/** Milliseconds before the first liveness probe of a worker with a request in flight, and between the next. */
const FIRST_PROBE_MS = 50, PROBE_MS = 100;
/** Milliseconds a liveness probe waits: a busy or stopped worker does not answer, and that is no loss. */
const PROBE_TIMEOUT_MS = 200;

/** Median phase timings of the pool's training steps, in milliseconds. */
export type NatsPoolTimings = {
  steps: number;
  /** Publishing the weights (encode + hand to the socket). */
  publish_ms: number;
  /** Weights published → last slice decoded. */
  round_ms: number;
  /** Longest worker-reported forward + backward time of the step. */
  compute_ms: number;
  /** round − compute: transfer, queueing and (de)coding. */
  transfer_ms: number;
};

interface LiveWorker {
  name: string;
  backend: string;
  device: string;
}

/** A worker between its join request and its admission at a step boundary. */
interface Joiner {
  /** Set once its manifest matched. */
  worker: LiveWorker | undefined;
  /** Datasets it holds. */
  shipped: Set<string>;
  /** `performance.now()` of its join: a joiner that never reports its model is forgotten. */
  since: number;
  /** True once every dataset reached it: admitted at the next step boundary. */
  prepared: boolean;
}

/** A dataset as shipped to workers, kept for workers that join later. */
interface ShippedData {
  hash: string;
  inputs: number[][];
  y: number[] | null;
  body: Float32Array;
}

/** Round times of one worker for one kind of request. */
type Rounds = { ms: number; rows: number }[];

/** A request that failed because its worker is gone. */
class LostSignal extends Error {}

/** The attempt must run again: the connection was interrupted, or no worker is left to run it. */
class RetryAttempt extends Error {}

/** What the attempts at one step have seen. */
interface StepTally {
  /** Attempts given up because a slice was lost or rejected (slices computed together). */
  failures: number;
  /** Replies rejected for non-finite values; a second one is accepted (the model diverged). */
  nonFinite: number;
}

/** Starts (or joins) the workers and returns a pool bound to the engine's model and loss. */
export async function createNatsPool(engine: Engine, opts: NatsPoolOptions): Promise<WorkerPool> {
  return await NatsPool.create(engine, opts);
}

/** The {@link WorkerPool} over NATS; see {@link createNatsPool}. */
export class NatsPool implements WorkerPool {
  readonly job: string;
  readonly #engine: Engine;
  readonly #opts: NatsPoolOptions;
  readonly #nc: NatsConnection;
  readonly #server: NatsServer | undefined;
  readonly #local: LocalWorkers | undefined;
  readonly #subjects: ReturnType<typeof jobSubjects>;
  readonly #timeoutMs: number;
  readonly #url: string;
  readonly #count: number;
  readonly #maxWorkers: number;
  #live: LiveWorker[] = [];
  readonly #joiners = new Map<string, Joiner>();
  /** Workers whose model or setup failed, with why: their joins are refused. */
  readonly #refused = new Map<string, string>();
  readonly #known = new Set<string>();
  readonly #lengths = new Map<string, number>();
  readonly #datasets = new Map<string, ShippedData>();
  /** Round times per `worker:kind`. */
  readonly #rounds = new Map<string, Rounds>();
  #version = 0;
  #currentStep = -1;
  #lastStep = -1;
  #closed = false;
  /** True while `create` waits for the first workers: setup failures end the start. */
  #starting = true;
  #failure: Error | undefined;
  /** Bumped on every disconnect and reconnect. */
  #epoch = 0;
  #connected = true;
  #reconnectedAt = -Infinity;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #services: Service[] = [];
  /** Watch controllers of the requests in flight, per worker: dropping a worker aborts them. */
  readonly #inflight = new Map<string, Set<AbortController>>();
  readonly #times = { publish: [] as number[], round: [] as number[], compute: [] as number[] };

  private constructor(
    engine: Engine,
    opts: NatsPoolOptions,
    nc: NatsConnection,
    server: NatsServer | undefined,
    local: LocalWorkers | undefined,
    job: string,
    url: string,
    count: number,
  ) {
    this.#engine = engine;
    this.#opts = opts;
    this.#nc = nc;
    this.#server = server;
    this.#local = local;
    this.job = job;
    this.#subjects = jobSubjects(job);
    this.#timeoutMs = (opts.requestTimeoutSeconds ?? 120) * 1000;
    this.#url = url;
    this.#count = count;
    this.#maxWorkers = opts.maxWorkers ?? count;
  }

  /** Validates the options, starts what is needed and waits until every worker reported its model. */
  static async create(engine: Engine, opts: NatsPoolOptions): Promise<NatsPool> {
    const count = validate(opts);
    tuneAllocator();
    const job = opts.job ?? crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    let server: NatsServer | undefined;
    let local: LocalWorkers | undefined;
    let nc: NatsConnection | undefined;
    try {
      let url = opts.nats;
      let auth = opts.auth;
      let workerEnv: Record<string, string> = {};
      if (url === undefined) {
        // The embedded server admits only this job's processes, each role with its own permissions.
        const creds = localCredentials();
        server = await startNatsServer({
          configText: natsServerConfig({
            maxPayload: opts.maxPayload ?? 16 * 1024 * 1024,
            maxPending: DEFAULT_MAX_PENDING,
            users: creds.users,
          }),
        });
        url = server.url;
        auth = creds.coordinator;
        workerEnv = natsAuthEnv(creds.worker);
      }
      nc = await connectResilient(auth, { servers: url, name: `shoal-coordinator-${job}` });
      if (opts.nats === undefined) {
        local = await launchWorkers({
          url,
          job,
          count,
          ...(opts.gpus ? { gpus: opts.gpus } : {}),
          backend: opts.backend,
          env: workerEnv,
          ...(opts.workerArgs ? { extraArgs: opts.workerArgs } : {}),
        });
      }
      const pool = new NatsPool(engine, opts, nc, server, local, job, url, count);
      try {
        pool.#start();
        await pool.#awaitFirstWorkers();
      } catch (error) {
        pool.#stopBackground();
        throw error;
      }
      return pool;
    } catch (error) {
      await nc?.close().catch(() => {});
      await local?.stop();
      await server?.stop();
      throw error;
    }
  }

  get workers(): number {
    return this.#live.length;
  }

  get backend(): string {
    return [...new Set(this.#live.map((w) => w.backend))].join(",");
  }

  /** Names and devices of the live workers, in slice order. */
  get liveWorkers(): readonly Readonly<LiveWorker>[] {
    return this.#live;
  }

  /** Process ids of the spawned workers (empty with external workers). */
  get localPids(): number[] {
    return this.#local?.workers.map((w) => w.pid) ?? [];
  }

  /** Process id of the embedded server, if any. */
  get serverPid(): number | undefined {
    return this.#server?.pid;
  }

  /** Median phase timings of the training steps so far. */
  timings(): NatsPoolTimings {
    const round = median(this.#times.round);
    const compute = median(this.#times.compute);
    return {
      steps: this.#times.round.length,
      publish_ms: median(this.#times.publish),
      round_ms: round,
      compute_ms: compute,
      transfer_ms: round - compute,
    };
  }

  /** The job as workers receive it on joining. */
  #spec(): JobSpec {
    return {
      job: this.job,
      model: this.#engine.network.toConfig(),
      loss: this.#engine.spec.loss,
      metrics: this.#engine.spec.metrics.map((m) => ({ name: m.name, fn: m.fn })),
      seed: this.#engine.spec.seed,
      backend: this.#opts.backend,
      gradEncoding: this.#opts.gradEncoding ?? "f32",
    };
  }

  /** Serves joins and manifests for the whole run, watches the connection and starts the heartbeat. */
  #start(): void {
    const spec = this.#spec();
    this.#services.push(
      serve(this.#nc, this.#subjects.join, (msg) => {
        const { header } = decodeMessage(msg.data, JoinRequest);
        const reason = this.#joinRefusal(header);
        if (reason === undefined) {
          this.#joiners.set(header.worker, {
            worker: undefined,
            shipped: new Set(),
            prepared: false,
            since: performance.now(),
          });
        }
        msg.respond(
          encodeMessage(reason === undefined ? { accepted: true, spec } : { accepted: false, reason }),
        );
      }),
      serve(this.#nc, this.#subjects.ready, (msg) => {
        const { header } = decodeMessage(msg.data, ReadyRequest);
        msg.respond(encodeMessage({ ok: this.#onReady(header) }));
      }),
    );
    const watch = async () => {
      for await (const s of this.#nc.status()) {
        if (s.type === Events.Disconnect) {
          this.#connected = false;
          this.#epoch++;
          console.warn(`Job ${this.job}: lost the connection to the NATS server ${s.data}; reconnecting`);
        } else if (s.type === Events.Reconnect) {
          this.#connected = true;
          this.#epoch++;
          this.#reconnectedAt = performance.now();
          console.warn(`Job ${this.job}: reconnected to the NATS server ${s.data}`);
        }
      }
    };
    void watch().catch((error) => console.warn(`Job ${this.job}: connection status: ${error}`));
    this.#heartbeat = setInterval(() => {
      try {
        this.#beat();
        if (!this.#starting) this.#hello();
      } catch (error) {
        console.warn(`Job ${this.job}: heartbeat failed: ${error}`);
      }
    }, (this.#opts.heartbeatSeconds ?? 1) * 1000);
  }

  /** Why a join request is refused, or `undefined` to accept it. */
  #joinRefusal(header: JoinRequest): string | undefined {
    const name = header.worker;
    if (header.job !== this.job) return `it asked for job ${header.job}`;
    if (this.#closed) return `job ${this.job} is over`;
    if (this.#live.some((w) => w.name === name) || this.#joiners.has(name)) {
      return `the name ${name} is taken: give each worker its own --name`;
    }
    const refused = this.#refused.get(name);
    if (refused !== undefined) return refused;
    if (this.#live.length + this.#joiners.size >= this.#maxWorkers) {
      return `job ${this.job} has its ${this.#maxWorkers} workers (maxWorkers)`;
    }
    return undefined;
  }

  /** Checks a joiner's manifest; on success its datasets start to travel. Returns the ack. */
  #onReady(header: ReadyRequest): boolean {
    const joiner = this.#joiners.get(header.worker);
    if (!joiner || joiner.worker || header.job !== this.job) return false;
    const problem = header.error
      ? new Error(`Worker ${header.worker} could not set up job ${this.job}: ${header.error}`)
      : this.#compareManifest(header);
    if (problem) {
      this.#joiners.delete(header.worker);
      this.#refused.set(header.worker, problem.message);
      if (this.#starting) this.#failure ??= problem;
      else console.warn(`Job ${this.job}: refused worker ${header.worker}: ${problem.message}`);
      return false;
    }
    joiner.worker = { name: header.worker, backend: header.backend, device: header.device };
    // Before the ack: the worker learns the heartbeat's interval even if the coordinator dies next.
    this.#beat();
    void this.#prepare(joiner);
    return true;
  }

  /** Ships every dataset to a joiner; a joiner lost on the way is forgotten (it may join again). */
  async #prepare(joiner: Joiner): Promise<void> {
    const worker = joiner.worker!;
    try {
      if (await this.#catchUp(joiner)) joiner.prepared = true;
      else this.#joiners.delete(worker.name);
    } catch (error) {
      this.#joiners.delete(worker.name);
      console.warn(`Job ${this.job}: worker ${worker.name} could not join: ${reasonOf(error)}`);
    }
  }

  /** Ships the datasets a joiner lacks; false when it was lost. */
  async #catchUp(joiner: Joiner): Promise<boolean> {
    const worker = joiner.worker!;
    for (;;) {
      const missing = [...this.#datasets].filter(([name]) => !joiner.shipped.has(name));
      if (missing.length === 0) return true;
      for (const [name, data] of missing) {
        if (!await this.#ship(worker, name, data, new AbortController().signal)) return false;
        joiner.shipped.add(name);
      }
    }
  }

  /** Publishes the heartbeat (and forgets joiners that never reported their model). */
  #beat(): void {
    if (this.#closed || !this.#connected) return;
    for (const [name, joiner] of this.#joiners) {
      if (!joiner.worker && performance.now() - joiner.since > this.#timeoutMs) {
        this.#joiners.delete(name);
        console.warn(`Job ${this.job}: worker ${name} joined but never reported its model; forgot it`);
      }
    }
    const heartbeat: Heartbeat = {
      job: this.job,
      step: Math.max(0, this.#currentStep),
      members: [...this.#live.map((w) => w.name), ...this.#joiners.keys()],
      intervalMs: (this.#opts.heartbeatSeconds ?? 1) * 1000,
      misses: this.#opts.heartbeatMisses ?? 10,
    };
    this.#nc.publish(jobSubjects(this.job).heartbeat, encodeMessage(heartbeat));
  }

  /** Announces the job to idle workers when it takes more. */
  #hello(): void {
    if (this.#live.length + this.#joiners.size >= this.#maxWorkers) return;
    this.#nc.publish(this.#subjects.hello, encodeMessage({ job: this.job, wanted: this.#maxWorkers }));
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
        const live = this.#live.find((l) => l.name === w.name);
        if (live && !this.#closed) this.#drop(live, `its process ${how}: its connection closed`);
      });
    }
    const prepared = () => [...this.#joiners.values()].filter((j) => j.prepared).length;
    const timeoutMs = (this.#opts.joinTimeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeoutMs;
    try {
      while (prepared() < count && !this.#failure && Date.now() < deadline) {
        this.#checkStop(`waiting for ${count} workers to join`);
        this.#nc.publish(this.#subjects.hello, encodeMessage({ job: this.job, wanted: count }));
        await sleep(100);
      }
    } finally {
      this.#starting = false;
    }
    if (this.#failure) throw this.#failure;
    if (prepared() < count) {
      const accepted = [...this.#joiners.keys()];
      throw new Error(
        `Cannot start job ${this.job} as ${count} workers were needed and ${prepared()} joined within ${
          timeoutMs / 1000
        } s (${accepted.length} accepted: ${accepted.join(", ") || "none"}). Start workers with ` +
          `\`deno task worker --nats ${this.#url}\` (add --job ${this.job} to bind one to this job), or raise joinTimeoutSeconds.`,
      );
    }
    await this.#admit();
    const backends = new Set(this.#live.map((w) => w.backend));
    if (backends.size > 1) {
      console.warn(`Workers of job ${this.job} run different backends: ${[...backends].join(", ")}`);
    }
  }

  /** Moves prepared joiners into the live set (they take slices from now on). */
  async #admit(): Promise<void> {
    for (const [name, joiner] of [...this.#joiners]) {
      if (!joiner.prepared) continue;
      const ok = await this.#catchUp(joiner).catch(() => false);
      this.#joiners.delete(name);
      if (!ok) continue;
      this.#live.push(joiner.worker!);
      this.#live.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
      for (const key of [...this.#rounds.keys()]) if (key.startsWith(`${name}:`)) this.#rounds.delete(key);
      const rejoined = this.#known.has(name);
      this.#known.add(name);
      if (this.#currentStep >= 0) {
        console.warn(
          `Worker ${name} ${
            rejoined ? "rejoined" : "joined"
          } job ${this.job} at step ${this.#currentStep}; ` +
            `continuing with ${this.#live.length} workers`,
        );
      }
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
    await this.#admit();
    const min = this.#opts.minWorkers ?? 1;
    if (this.#live.length >= min) return;
    const timeoutMs = (this.#opts.joinTimeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeoutMs;
    const step = this.#currentStep;
    console.warn(
      `Job ${this.job} paused at step ${step}: waiting for workers: ${this.#live.length} of ${this.#count} live, ` +
        `need ${min}; start one with \`deno task worker --nats ${this.#url}\` (waiting up to ${
          timeoutMs / 1000
        } s)`,
    );
    let lastHello = 0;
    while (this.#live.length < min) {
      this.#checkStop(`waiting for workers at step ${step}`);
      if (Date.now() >= deadline) {
        throw new NotEnoughWorkersError(
          `Cannot run step ${step} of job ${this.job} as ${this.#live.length} worker(s) live and minWorkers is ${min}: ` +
            `none joined within ${
              timeoutMs / 1000
            } s. Start workers with \`deno task worker --nats ${this.#url}\`, ` +
            "lower minWorkers or raise joinTimeoutSeconds, then resume from the last checkpoint.",
          this.#live.length,
          min,
          step,
        );
      }
      if (Date.now() - lastHello >= 250 && this.#connected) {
        this.#hello();
        lastHello = Date.now();
      }
      await sleep(50);
      await this.#admit();
    }
    console.warn(`Job ${this.job} resumes at step ${step} with ${this.#live.length} workers`);
  }

  /** The first weight where a worker's manifest differs from the coordinator's model, as an error. */
  #compareManifest(m: ReadyRequest): ModelMismatchError | undefined {
    const net = this.#engine.network;
    const sides = [["params", net.paramLayout, m.params], ["state", net.stateLayout, m.state]] as const;
    for (const [kind, ours, theirs] of sides) {
      for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
        const a = ours[i], b = theirs[i];
        if (a && b && a.path === b.path && a.shape.join(",") === b.shape.join(",")) continue;
        const weight = a?.path ?? b?.path ?? "";
        return new ModelMismatchError(
          `Cannot use worker ${m.worker} as its model differs from the coordinator's at ${kind} weight ${i}: ` +
            `worker has ${b ? `${b.path} [${b.shape}]` : "nothing"}, coordinator has ${
              a ? `${a.path} [${a.shape}]` : "nothing"
            }. ` +
            "Run the same Shoal version on the coordinator and the workers.",
          weight,
        );
      }
    }
    return undefined;
  }

  async setData(name: string, data: Dataset): Promise<void> {
    this.#checkOpen();
    const arrays = [...data.inputs, ...(data.y ? [data.y] : [])];
    const body = new Float32Array(arrays.reduce((n, a) => n + a.data.length, 0));
    let o = 0;
    for (const a of arrays) {
      body.set(a.data, o);
      o += a.data.length;
    }
    const shapes = JSON.stringify(arrays.map((a) => a.shape));
    const shapeBytes = new TextEncoder().encode(shapes);
    const hashInput = new Uint8Array(shapeBytes.length + body.byteLength);
    hashInput.set(shapeBytes);
    hashInput.set(new Uint8Array(body.buffer), shapeBytes.length);
    const hash = toHex(await crypto.subtle.digest("SHA-256", hashInput));
    const shipped: ShippedData = {
      hash,
      inputs: data.inputs.map((a) => a.shape),
      y: data.y ? data.y.shape : null,
      body,
    };
    // Joiners from now on receive it too (see #catchUp).
    this.#datasets.set(name, shipped);
    await this.#retrying(`shipping dataset "${name}"`, async (attempt) => {
      await settleAll(this.#live.map((w) => this.#ship(w, name, shipped, attempt.signal)), attempt);
    });
    this.#lengths.set(name, data.length);
  }

  /** Ships one dataset to one worker (a hash probe first); false when the worker was lost. */
  async #ship(worker: LiveWorker, name: string, data: ShippedData, signal: AbortSignal): Promise<boolean> {
    for (const probe of [true, false]) {
      const header: WorkRequest = {
        kind: "data",
        job: this.job,
        name,
        hash: data.hash,
        inputs: data.inputs,
        y: data.y,
        probe,
      };
      const reply = await this.#request(worker, header, probe ? undefined : data.body, signal);
      if (!reply) return false;
      const h = reply.header;
      if (h.kind === "error") {
        throw new Error(`Worker ${worker.name} could not load dataset "${name}": ${h.error}`);
      }
      if (h.kind === "data" && h.cached) return true;
    }
    throw new Error(`Worker ${worker.name} did not keep dataset "${name}" (${data.hash})`);
  }

  async trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    this.#checkOpen();
    if (req.step <= this.#lastStep) {
      throw new RangeError(
        `Cannot run step ${req.step} of job ${this.job} as step ${this.#lastStep} already ran: ` +
          "step ids must increase so that no optimizer update is applied twice",
      );
    }
    this.#currentStep = req.step;
    const tally: StepTally = { failures: 0, nonFinite: 0 };
    const results = await this.#retrying(
      `step ${req.step}`,
      (attempt) => this.#trainOnce(data, req, attempt, tally),
    );
    this.#lastStep = req.step;
    return results;
  }

  /**
   * One attempt at a step: fresh weights version, one slice per live worker. When the model's slices
   * exchange partial results (BatchNormalization), a slice cannot be recomputed alone: a lost worker or
   * a rejected slice aborts the attempt for all slices and the step runs again.
   */
  async #trainOnce(
    data: string,
    req: StepRequest,
    attempt: AbortController,
    tally: StepTally,
  ): Promise<SliceResult[]> {
    const t0 = performance.now();
    const version = await this.#publishWeights(req.params, req.state);
    const t1 = performance.now();
    const n = req.indices.length;
    const parts = this.#live.length;
    const slices: [number, number][] = [];
    for (let k = 0; k < parts; k++) {
      const start = Math.floor((k * n) / parts), end = Math.floor(((k + 1) * n) / parts);
      if (end > start) slices.push([start, end]);
    }
    const together = this.#engine.network.exchangesBetweenSlices && slices.length > 1;
    let computeMax = 0;
    let results: SliceResult[];
    try {
      results = await settleAll(
        slices.map(([start, end], k) => {
          const indices = req.indices.slice(start, end);
          const header: WorkRequest = {
            kind: "train",
            job: this.job,
            data,
            version,
            step: req.step,
            rowOffset: start,
            slice: k,
            slices: slices.length,
            encoding: this.#opts.gradEncoding ?? "f32",
          };
          let nonFinite = tally.nonFinite;
          return this.#onSomeWorker(
            `step ${req.step} slice ${k} (rows ${start}..${end})`,
            k,
            header,
            indices,
            (r, w) => {
              const accepted = this.#acceptTrain(r, w, req.step, end - start, nonFinite > 0);
              if (typeof accepted === "string" && accepted.startsWith("non-finite")) {
                nonFinite++;
                tally.nonFinite++;
              }
              if (typeof accepted !== "string") computeMax = Math.max(computeMax, accepted.computeMs);
              return typeof accepted === "string" ? accepted : accepted.result;
            },
            attempt.signal,
            end - start,
            !together,
          );
        }),
        attempt,
      );
    } catch (error) {
      if (!together) throw error;
      this.#abortExchange(version, reasonOf(error));
      if (error instanceof RetryAttempt && ++tally.failures > 2 * this.#known.size + 2) {
        throw new Error(
          `Cannot complete step ${req.step} in job ${this.job} after ${tally.failures} attempts: ${error.message}`,
        );
      }
      throw error;
    }
    this.#times.publish.push(t1 - t0);
    this.#times.round.push(performance.now() - t1);
    this.#times.compute.push(computeMax);
    return results;
  }

  /** Wakes the workers of a failed step attempt that wait in its slice exchange. */
  #abortExchange(version: number, reason: string): void {
    try {
      this.#nc.publish(
        this.#subjects.sync(version),
        encodeMessage({ kind: "abort", job: this.job, version, reason } satisfies SyncHeader),
      );
    } catch (error) {
      console.warn(
        `Job ${this.job}: could not abort the slice exchange of version ${version}: ${reasonOf(error)}`,
      );
    }
  }

  /**
   * Runs `attempt` at a step boundary; when it must run again (the connection dropped, or no worker
   * was left), waits for the connection and the workers, then runs it again.
   */
  async #retrying<T>(what: string, attempt: (controller: AbortController) => Promise<T>): Promise<T> {
    for (let tries = 1;; tries++) {
      await this.#boundary();
      const controller = new AbortController();
      try {
        return await attempt(controller);
      } catch (error) {
        controller.abort();
        if (!(error instanceof RetryAttempt)) throw error;
        console.warn(
          `Job ${this.job}: ${what} interrupted (${error.message}); running it again (try ${tries + 1})`,
        );
        await this.#recover();
      }
    }
  }

  /** Waits for the connection, then for each live worker to answer again (or drops it). */
  async #recover(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    while (!this.#connected) {
      this.#checkOpen();
      this.#checkStop("waiting for the NATS server");
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot go on with job ${this.job} as the NATS server ${this.#url} was unreachable for ${
            this.#timeoutMs / 1000
          } s: check the server, then resume from the last checkpoint`,
        );
      }
      await sleep(50);
    }
    await Promise.all(this.#live.map((w) => this.#awaitBack(w)));
  }

  /** Probes a worker until it is subscribed again; drops it after the reconnect grace. */
  async #awaitBack(worker: LiveWorker): Promise<void> {
    const grace = RECONNECT_GRACE_MS + (this.#measuredMs(worker.name, "train", 0) ?? 0);
    const until = performance.now() + grace;
    for (;;) {
      try {
        await this.#nc.request(`${this.#subjects.worker(worker.name)}.alive`, new Uint8Array(0), {
          timeout: 250,
        });
        return;
      } catch (error) {
        // Busy or stopped, but subscribed: its step deadline decides.
        if (error instanceof NatsError && error.code === ErrorCode.Timeout && this.#connected) return;
        if (!(error instanceof NatsError)) throw error;
      }
      if (performance.now() > until) {
        this.#drop(worker, `it was not back ${grace / 1000} s after the connection to the server returned`);
        return;
      }
      await sleep(100);
    }
  }

  /** A checked slice result, or why the reply is rejected. */
  #acceptTrain(
    reply: { header: WorkReply; body: Uint8Array },
    worker: LiveWorker,
    step: number,
    count: number,
    nonFiniteSeen: boolean,
  ): { result: SliceResult; computeMs: number } | string {
    const h = reply.header;
    if (h.kind === "error") return `the worker failed: ${h.error}`;
    if (h.job !== this.job) return `it is for job ${h.job}, not ${this.job}`;
    if (!this.#known.has(h.worker)) return `it comes from unknown worker "${h.worker}"`;
    if (h.worker !== worker.name) return `worker ${h.worker} answered a request sent to ${worker.name}`;
    if (h.kind !== "train") return `it is a ${h.kind} reply, not a train reply`;
    if (h.step !== step) return `it is for step ${h.step}, not the current step ${step}`;
    if (h.count !== count) return `it covers ${h.count} samples, not the slice's ${count}`;
    const expected = this.#engine.network.params.length;
    const bytesPer = h.encoding === "bf16" ? 2 : 4;
    const gradBytes = h.gradLength * bytesPer;
    const statsStart = Math.ceil(gradBytes / 8) * 8;
    const statFloats = h.batchStats.reduce((n, s) => n + 2 * s.channels, 0);
    if (h.gradLength !== expected || reply.body.length !== statsStart + statFloats * 4) {
      return `its gradient has ${h.gradLength} values (${reply.body.length} body bytes), the model has ${expected}`;
    }
    const grads = decodeF32(reply.body.subarray(0, gradBytes), h.encoding);
    const stats = asFloat32(reply.body.slice(statsStart));
    const scalars = [h.lossSum, h.regLoss, ...h.metricSums];
    const bad = firstNonFinite(grads) ?? firstNonFinite(stats) ??
      (scalars.some((v) => !Number.isFinite(v)) ? -1 : undefined);
    if (bad !== undefined && !nonFiniteSeen) {
      return `non-finite values (first at ${bad < 0 ? "loss/metric sums" : `index ${bad}`})`;
    }
    if (bad !== undefined) {
      console.warn(
        `Step ${step}: non-finite gradient reproduced on worker ${worker.name}: accepting it (the model diverged)`,
      );
    }
    let o = 0;
    const batchStats = h.batchStats.map((s) => {
      const mean = stats.slice(o, o + s.channels);
      const variance = stats.slice(o + s.channels, o + 2 * s.channels);
      o += 2 * s.channels;
      return { layer: s.layer, mean, variance };
    });
    return {
      result: {
        count: h.count,
        grads,
        lossSum: h.lossSum,
        metricSums: h.metricSums,
        regLoss: h.regLoss,
        batchStats,
      },
      computeMs: h.computeMs,
    };
  }

  async evaluate(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
  ): Promise<EvalResult> {
    const chunks = await this.#chunked(data, params, state, batchSize, "eval", (r) => {
      const h = r.header;
      return h.kind === "eval" ? h.chunks : `it is a ${h.kind} reply, not an eval reply`;
    });
    const total: EvalResult = {
      count: 0,
      lossSum: 0,
      metricSums: this.#engine.spec.metrics.map(() => 0),
      regLoss: 0,
    };
    for (const r of chunks.flat()) {
      total.count += r.count;
      total.lossSum += r.lossSum;
      r.metricSums.forEach((m, i) => total.metricSums[i]! += m);
      total.regLoss = r.regLoss;
    }
    return total;
  }

  async predict(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
  ): Promise<Float32Array> {
    const parts = await this.#chunked(data, params, state, batchSize, "predict", (r) => {
      const h = r.header;
      if (h.kind !== "predict") return `it is a ${h.kind} reply, not a predict reply`;
      if (r.body.length !== h.length * 4) {
        return `its body holds ${r.body.length} bytes for ${h.length} outputs`;
      }
      return asFloat32(r.body.slice());
    });
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Splits the `batchSize` chunks of a dataset in contiguous runs over the workers; results in chunk order. */
  async #chunked<T>(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
    kind: "eval" | "predict",
    accept: (reply: { header: WorkReply; body: Uint8Array }) => T | string,
  ): Promise<T[]> {
    this.#checkOpen();
    const length = this.#lengths.get(data);
    if (length === undefined) throw new Error(`No dataset named ${data} was set on the pool`);
    return await this.#retrying(`${kind} of "${data}"`, async (attempt) => {
      const version = await this.#publishWeights(params, state);
      const chunks = Math.ceil(length / batchSize);
      const parts = Math.min(this.#live.length, chunks);
      const runs: [number, number][] = [];
      for (let k = 0; k < parts; k++) {
        runs.push([Math.floor((k * chunks) / parts), Math.floor(((k + 1) * chunks) / parts)]);
      }
      return await settleAll(
        runs.map(([first, end], k) => {
          const header: WorkRequest = { kind, job: this.job, data, version, batchSize, first, end };
          return this.#onSomeWorker(
            `${kind} of "${data}" chunks ${first}..${end}`,
            k,
            header,
            undefined,
            (r, w) => {
              const h = r.header;
              if (h.kind === "error") return `the worker failed: ${h.error}`;
              if (h.job !== this.job) return `it is for job ${h.job}, not ${this.job}`;
              if (h.worker !== w.name) return `worker ${h.worker} answered a request sent to ${w.name}`;
              return accept(r);
            },
            attempt.signal,
            Math.min(length, end * batchSize) - first * batchSize,
          );
        }),
        attempt,
      );
    });
  }

  /** Publishes params ‖ state once for all workers; returns the version requests name. */
  async #publishWeights(params: Float32Array, state: Float32Array): Promise<number> {
    const version = ++this.#version;
    const header: WeightsHeader = {
      job: this.job,
      version,
      paramsLength: params.length,
      stateLength: state.length,
    };
    await publishLarge(this.#nc, this.#subjects.weights, header, [params, state]);
    return version;
  }

  /**
   * Runs one request on the `preferred`-th live worker; a rejected reply or a lost worker moves it to
   * the next live worker. `accept` returns the result or the reason for rejecting the reply. `rows`
   * (of a train, eval or predict request) scales the step deadline.
   */
  async #onSomeWorker<T>(
    what: string,
    preferred: number,
    header: WorkRequest,
    body: ArrayBufferView | undefined,
    accept: (reply: { header: WorkReply; body: Uint8Array }, worker: LiveWorker) => T | string,
    signal: AbortSignal,
    rows: number,
    failover = true,
  ): Promise<T> {
    const attempts = 2 * this.#known.size + 2;
    let lastReason = "";
    for (let attempt = 0; attempt < attempts; attempt++) {
      signal.throwIfAborted();
      const worker = this.#live[(preferred + attempt) % this.#live.length];
      if (!worker) throw new RetryAttempt(`no worker is left to compute ${what}`);
      const reply = await this.#request(worker, header, body, signal, rows);
      if (!reply && !failover) throw new RetryAttempt(`worker ${worker.name} was lost computing ${what}`);
      if (!reply) continue;
      const result = accept(reply, worker);
      if (typeof result !== "string") return result;
      lastReason = result;
      console.warn(
        `Rejected the reply of worker ${worker.name} for ${what} in job ${this.job}: ${result}; ${
          failover ? "recomputing it" : "running the step again"
        }`,
      );
      if (!failover) throw new RetryAttempt(`worker ${worker.name}'s reply was rejected: ${result}`);
    }
    throw new Error(
      `Cannot complete ${what} in job ${this.job} after ${attempts} attempts: last rejection: ${lastReason}`,
    );
  }

  /** The longest wait for one worker's reply: see {@link NatsPoolOptions.stepTimeoutFactor}. */
  #deadlineMs(worker: string, kind: WorkRequest["kind"], rows: number): number {
    return this.#measuredMs(worker, kind, rows) ?? this.#timeoutMs;
  }

  /** The measured step deadline, or `undefined` before the worker answered a request of this kind. */
  #measuredMs(worker: string, kind: WorkRequest["kind"], rows: number): number | undefined {
    const rounds = this.#rounds.get(`${worker}:${kind}`);
    if (kind === "data" || kind === "leave" || !rounds?.length) return undefined;
    const slowest = Math.max(...rounds.map((r) => r.ms * Math.max(1, rows / Math.max(1, r.rows))));
    const floor = (this.#opts.stepTimeoutFloorSeconds ?? 3) * 1000;
    return Math.min(this.#timeoutMs, Math.max(floor, (this.#opts.stepTimeoutFactor ?? 5) * slowest));
  }

  /**
   * One request to one worker; `undefined` (and the worker dropped) when the worker is gone. Throws
   * {@link RetryAttempt} when the connection to the server dropped meanwhile.
   */
  async #request(
    worker: LiveWorker,
    header: WorkRequest,
    body: ArrayBufferView | undefined,
    signal: AbortSignal,
    rows = 0,
  ): Promise<{ header: WorkReply; body: Uint8Array } | undefined> {
    const subject = this.#subjects.worker(worker.name);
    const watch = new AbortController();
    const inflight = this.#inflight.get(worker.name) ?? new Set();
    this.#inflight.set(worker.name, inflight.add(watch));
    const watcher = this.#watch(subject, watch);
    const epoch = this.#epoch;
    const timeout = this.#deadlineMs(worker.name, header.kind, rows);
    const t0 = performance.now();
    try {
      const reply = await requestLarge(this.#nc, subject, header, body, WorkReply, {
        timeout,
        signal: AbortSignal.any([watch.signal, signal]),
      });
      const rounds = this.#rounds.get(`${worker.name}:${header.kind}`) ?? [];
      rounds.push({ ms: performance.now() - t0, rows });
      if (rounds.length > ROUNDS_KEPT) rounds.shift();
      this.#rounds.set(`${worker.name}:${header.kind}`, rounds);
      return reply;
    } catch (error) {
      if (signal.aborted) throw error;
      const why = error instanceof LostSignal
        ? error.message
        : error instanceof NatsError && error.code === ErrorCode.NoResponders
        ? "no responders on its subject: the process is gone"
        : error instanceof NatsError && error.code === ErrorCode.Timeout
        ? `no reply within its step deadline of ${(timeout / 1000).toFixed(1)} s`
        : undefined;
      if (why === undefined) throw error;
      if (!(error instanceof NatsError && error.code === ErrorCode.Timeout)) {
        // A server going down closes its clients one by one: a worker's subject can lose its
        // subscriber moments before this connection drops. Wait until that drop would be seen.
        await sleep(NO_RESPONDERS_SETTLE_MS);
      }
      if (this.#interrupted(epoch)) {
        throw new RetryAttempt(
          `the connection to the NATS server dropped while worker ${worker.name} worked`,
        );
      }
      this.#drop(worker, why);
      return undefined;
    } finally {
      inflight.delete(watch);
      watch.abort();
      await watcher;
    }
  }

  /** True when the connection dropped since `epoch`, is down, or came back moments ago. */
  #interrupted(epoch: number): boolean {
    return epoch !== this.#epoch || !this.#connected ||
      performance.now() - this.#reconnectedAt < RECONNECT_GRACE_MS;
  }

  /** While a request runs, checks that the worker still subscribes; aborts when not. */
  async #watch(subject: string, watch: AbortController): Promise<void> {
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
        await this.#nc.request(`${subject}.alive`, new Uint8Array(0), { timeout: PROBE_TIMEOUT_MS });
      } catch (error) {
        if (error instanceof NatsError && error.code === ErrorCode.NoResponders) {
          watch.abort(new LostSignal("its connection closed while computing (no responders on its subject)"));
          return;
        }
      }
    }
  }

  #drop(worker: LiveWorker, why: string): void {
    if (!this.#live.includes(worker)) return;
    this.#live = this.#live.filter((w) => w !== worker);
    for (const watch of this.#inflight.get(worker.name) ?? []) watch.abort(new LostSignal(why));
    console.warn(
      `Lost worker ${worker.name} of job ${this.job} at step ${this.#currentStep} (${why}); ` +
        `continuing with ${this.#live.length} workers`,
    );
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`Cannot use the pool of job ${this.job} as it was closed`);
  }

  /** Stops the heartbeat and the services. */
  #stopBackground(): void {
    clearInterval(this.#heartbeat);
    for (const s of this.#services) void s.stop();
  }

  /** Ends the job on the workers, closes the connection, stops spawned workers and the embedded server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    try {
      this.#nc.publish(
        this.#subjects.end,
        encodeMessage({ job: this.job, reason: "closed" } satisfies EndHeader),
      );
      await Promise.all(this.#services.map((s) => s.stop()));
      await this.#nc.drain();
    } catch (error) {
      console.warn(`Closing the NATS connection of job ${this.job} failed: ${error}`);
    } finally {
      await this.#local?.stop();
      await this.#server?.stop();
    }
  }
}

function validate(opts: NatsPoolOptions): number {
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

/**
 * Awaits every task; on the first failure aborts `controller` (so the others stop early), waits for
 * all to settle, then throws that first failure.
 */
async function settleAll<T>(tasks: Promise<T>[], controller: AbortController): Promise<T[]> {
  let first: { error: unknown } | undefined;
  const settled = await Promise.allSettled(tasks.map((t) =>
    t.catch((error) => {
      first ??= { error };
      controller.abort();
      throw error;
    })
  ));
  if (first) throw first.error;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstNonFinite(a: Float32Array): number | undefined {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return undefined;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function toHex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
