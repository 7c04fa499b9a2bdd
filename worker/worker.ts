/**
 * A generic Shoal worker: joins a job announced over NATS, rebuilds the model from its Keras config,
 * reports its weights manifest, then computes training slices, evaluation sums and predictions until
 * the job ends. The protocol is described in shared/io/nats/protocol.ts.
 *
 * A job ends for a worker when the coordinator ends it, when the coordinator's heartbeat no longer
 * names the worker (it was dropped: it joins again), or when no heartbeat came for the announced
 * number of intervals while connected (the coordinator vanished). A worker bound to a job (`job`)
 * then returns, except after being dropped; an unbound one waits for the next hello. The connection
 * reconnects without limit, so a restarted server interrupts a job without ending it.
 */
import { Events, type Msg, type NatsConnection } from "npm:nats@2.29.3";
import {
  type BackendName,
  Engine,
  type EngineSpec,
  initBackend,
  type LossName,
  type MetricSpec,
  Network,
  type SliceExchange,
  type SliceResult,
} from "../shared/model/mod.ts";
import {
  asFloat32,
  type Body,
  copyBytes,
  decodeMessage,
  encodeF32,
  encodeMessage,
  publishLarge,
  requestLarge,
  serve,
  serveMessages,
  type Service,
} from "../shared/io/nats/mod.ts";
import {
  Ack,
  ANY_HELLO,
  EndHeader,
  Heartbeat,
  Hello,
  type JobSpec,
  jobSubjects,
  JoinReply,
  type ReadyRequest,
  WeightsHeader,
  type WorkReply,
  WorkRequest,
} from "../shared/io/nats/mod.ts";
import { connectResilient, type NatsAuth, tuneAllocator } from "../shared/io/nats/mod.ts";
import { type CachedDataset, datasetFromBody, gatherBatch, rangeOf } from "./dataset.ts";
import type { Fault } from "./faults.ts";
import { NatsSliceExchange } from "./slice_exchange.ts";

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** NATS server URL (without a password: credentials go in `auth`). */
  nats: string;
  /** Credentials and TLS files; see shared/io/nats/auth.ts. */
  auth?: NatsAuth;
  /** Worker name, unique within a job (one subject token). */
  name: string;
  /** Backend to run; without it the coordinator's choice. */
  backend?: BackendName;
  /** GPU id this process uses (CUDA_VISIBLE_DEVICES is already set); reported as the device. */
  gpu?: number;
  /** Serve only this job, then return; without it serve jobs one after another until aborted. */
  job?: string;
  /** Test-only fault injection. */
  fault?: Fault;
  /** Ends the worker (leaves the job, closes the connection). */
  signal?: AbortSignal;
  /** Milliseconds to wait for the weights a request names. @default 60000 */
  weightsTimeoutMs?: number;
}

interface Weights {
  version: number;
  params: Float32Array;
  state: Float32Array;
}

/** How a job ended for this worker. */
export type JobOutcome = "ended" | "dropped" | "vanished" | "refused" | "aborted";

/** Whether the connection is up, and since when (`performance.now()`). */
interface Link {
  connected: boolean;
  since: number;
}

/** Connects and serves jobs until `opts.job` ends or `opts.signal` aborts. */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  tuneAllocator();
  const nc = await connectResilient(opts.auth, { servers: opts.nats, name: `shoal-worker-${opts.name}` });
  console.error(
    `Worker ${opts.name} (pid ${Deno.pid}) connected to ${opts.nats}, waiting for ${opts.job ?? "any job"}`,
  );
  const cache = new Map<string, CachedDataset>();
  const abort = new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  const link: Link = { connected: true, since: performance.now() };
  const watchLink = async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        link.connected = false;
        console.error(`Worker ${opts.name}: lost the connection to ${s.data}; reconnecting`);
      } else if (s.type === Events.Reconnect) {
        Object.assign(link, { connected: true, since: performance.now() });
        console.error(`Worker ${opts.name}: reconnected to ${s.data}`);
      }
    }
  };
  void watchLink().catch((error) =>
    console.error(`Worker ${opts.name}: connection status: ${reason(error)}`)
  );
  try {
    for (;;) {
      const spec = await awaitJob(nc, opts, abort);
      if (!spec) return;
      const job = new JobRunner(nc, spec, opts, cache, link);
      const outcome = await job.run(abort);
      if (opts.signal?.aborted) return;
      if (opts.job !== undefined && outcome !== "dropped") return;
      console.error(
        `Worker ${opts.name}: left job ${spec.job} (${outcome}); waiting for ${opts.job ?? "any job"}`,
      );
    }
  } finally {
    await nc.drain().catch(() => {});
  }
}

/** Waits for a hello of a job that accepts this worker; undefined when aborted. */
async function awaitJob(
  nc: NatsConnection,
  opts: WorkerOptions,
  abort: Promise<void>,
): Promise<JobSpec | undefined> {
  const sub = nc.subscribe(opts.job === undefined ? ANY_HELLO : jobSubjects(opts.job).hello);
  const stop = abort.then(() => sub.unsubscribe());
  try {
    for await (const msg of sub) {
      const spec = await tryJoin(nc, msg, opts).catch((error) => {
        console.warn(`Worker ${opts.name}: joining failed: ${reason(error)}`);
        return undefined;
      });
      if (spec) return spec;
    }
    return undefined;
  } finally {
    sub.unsubscribe();
    void stop;
  }
}

async function tryJoin(nc: NatsConnection, msg: Msg, opts: WorkerOptions): Promise<JobSpec | undefined> {
  const { header: hello } = decodeMessage(msg.data, Hello);
  const request = { job: hello.job, worker: opts.name, pid: Deno.pid, host: Deno.hostname() };
  const { header: reply } = await requestLarge(
    nc,
    jobSubjects(hello.job).join,
    request,
    undefined,
    JoinReply,
    {
      timeout: 10_000,
    },
  );
  if (!reply.accepted || !reply.spec) {
    if (opts.job !== undefined) {
      console.warn(`Worker ${opts.name}: job ${hello.job} refused it: ${reply.reason}`);
    }
    return undefined;
  }
  return reply.spec;
}

/** One job on one worker: model, datasets, weights and the services answering the coordinator. */
class JobRunner {
  readonly #subjects: ReturnType<typeof jobSubjects>;
  readonly #datasets = new Map<string, CachedDataset>();
  #weights: Weights | undefined;
  #waiters: (() => void)[] = [];
  #engine: Engine | undefined;
  /** Started for models whose slices exchange partial results (BatchNormalization). */
  #exchange: NatsSliceExchange | undefined;
  #fault: Fault | undefined;
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
  ) {
    this.#subjects = jobSubjects(spec.job);
    this.#fault = opts.fault;
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
          (m, msg) => this.#onWork(m, msg),
          {
            onError,
            errorReply: (error) =>
              encodeMessage({ kind: "error", job: spec.job, worker: this.opts.name, error: reason(error) }),
          },
        ),
        serve(
          nc,
          `${this.#subjects.worker(this.opts.name)}.alive`,
          (msg) => msg.respond(encodeMessage({ ok: true })),
        ),
        serve(nc, this.#subjects.end, (msg) => {
          const { header } = decodeMessage(msg.data, EndHeader);
          if (header.job === spec.job) this.#ended("ended");
        }, { onError }),
        serve(nc, jobSubjects(spec.job).heartbeat, (msg) => this.#onHeartbeat(msg), { onError }),
      );
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
      console.error(`Worker ${this.opts.name} joined job ${spec.job}`);
      this.#beat.at = performance.now();
      void this.#watchCoordinator(() => watching);
      return await Promise.race([this.#endedPromise, abort.then(() => "aborted" as const)]);
    } finally {
      watching = false;
      await Promise.all(services.map((s) => s.stop()));
      await this.#exchange?.close();
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

  /** Builds the model and returns the manifest (or the error) to report. */
  async #setup(): Promise<ReadyRequest> {
    const { spec, opts } = this;
    const base = { job: spec.job, worker: opts.name, backend: "", device: "cpu", params: [], state: [] };
    try {
      const backend = await initBackend(opts.backend ?? spec.backend as BackendName);
      const network = Network.fromConfig(spec.model, spec.seed);
      const engineSpec: EngineSpec = {
        loss: spec.loss as LossName,
        metrics: spec.metrics as MetricSpec[],
        seed: spec.seed,
      };
      this.#engine = new Engine(network, engineSpec);
      if (network.exchangesBetweenSlices) {
        this.#exchange = await NatsSliceExchange.start({
          servers: opts.nats,
          ...(opts.auth ? { auth: opts.auth } : {}),
          name: opts.name,
          job: spec.job,
        });
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
      };
    } catch (error) {
      return { ...base, error: `Worker ${opts.name} could not rebuild the model: ${reason(error)}` };
    }
  }

  #onWeights(header: WeightsHeader, body: Uint8Array): void {
    if (header.job !== this.spec.job) return;
    const all = asFloat32(body);
    if (all.length !== header.paramsLength + header.stateLength) {
      throw new RangeError(
        `Cannot use weights version ${header.version} as the body holds ${all.length} floats: the header says ${
          header.paramsLength + header.stateLength
        }`,
      );
    }
    this.#weights = {
      version: header.version,
      params: all.subarray(0, header.paramsLength),
      state: all.subarray(header.paramsLength),
    };
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
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

  #dataset(name: string): CachedDataset {
    const ds = this.#datasets.get(name);
    if (!ds) {
      throw new Error(`Cannot use dataset "${name}" as it was not shipped to worker ${this.opts.name}`);
    }
    return ds;
  }

  /** The slice exchange of a train request's slice; none when the slice is the whole batch. */
  #exchangeFor(header: { version: number; slice: number; slices: number }): SliceExchange | undefined {
    if (header.slices === 1 || !this.#engine!.network.exchangesBetweenSlices) return undefined;
    if (!this.#exchange) {
      throw new Error(`Worker ${this.opts.name} has no slice exchange for job ${this.spec.job}`);
    }
    return this.#exchange.forSlice(header.version, header.slice, header.slices);
  }

  async #onWork(message: { header: WorkRequest; body: Uint8Array }, msg: Msg): Promise<void> {
    const { header, body } = message;
    if (!msg.reply) return;
    const base = { job: this.spec.job, worker: this.opts.name };
    if (header.job !== this.spec.job) {
      throw new RangeError(
        `Cannot serve a request for job ${header.job}: this worker runs job ${this.spec.job}`,
      );
    }
    const reply = (h: WorkReply, b?: Body) => publishLarge(this.nc, msg.reply!, h, b);
    switch (header.kind) {
      case "data": {
        const cached = this.cache.get(header.hash);
        if (cached) {
          this.#datasets.set(header.name, cached);
          return void await reply({ kind: "data", ...base, cached: true });
        }
        if (header.probe) return void await reply({ kind: "data", ...base, cached: false });
        const ds = datasetFromBody(asFloat32(copyBytes(body)), header.inputs, header.y);
        this.cache.set(header.hash, ds);
        this.#datasets.set(header.name, ds);
        return void await reply({ kind: "data", ...base, cached: true });
      }
      case "train": {
        const indices = new Int32Array(copyBytes(body).buffer);
        const ds = this.#dataset(header.data);
        const w = await this.#weightsFor(header.version);
        if (this.#fault === "exit-once") Deno.exit(3);
        const t0 = performance.now();
        const r = this.#engine!.trainSlice(
          w.params,
          w.state,
          gatherBatch(ds, indices),
          header.step,
          header.rowOffset,
          this.#exchangeFor(header),
        );
        const computeMs = performance.now() - t0;
        const out = {
          kind: "train" as const,
          ...base,
          step: header.step,
          computeMs,
          encoding: header.encoding,
        };
        const faulted = this.#injectFault(out, r);
        const gradBytes = encodeF32(faulted.grads, header.encoding);
        return void await reply({
          ...faulted.header,
          count: r.count,
          lossSum: r.lossSum,
          metricSums: r.metricSums,
          regLoss: r.regLoss,
          gradLength: faulted.grads.length,
          batchStats: r.batchStats.map((s) => ({ layer: s.layer, channels: s.mean.length })),
        }, trainBody(gradBytes, r));
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
        if (header.kind === "eval") {
          const chunks = ranges.map(([s, e]) => engine.evaluate(w.params, w.state, rangeOf(ds, s, e)));
          return void await reply({ kind: "eval", ...base, chunks });
        }
        const parts = ranges.map(([s, e]) => engine.predict(w.params, w.state, rangeOf(ds, s, e)));
        const outputs = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          outputs.set(p, o);
          o += p.length;
        }
        return void await reply({ kind: "predict", ...base, length: outputs.length }, outputs);
      }
      case "leave":
        await reply({ kind: "leave", ...base });
        this.#ended("ended");
        return;
    }
  }

  /** Applies the configured test fault to the first training reply, then forgets it. */
  #injectFault<H extends { job: string; worker: string; step: number }>(
    header: H,
    r: SliceResult,
  ): { header: H; grads: Float32Array } {
    const fault = this.#fault;
    if (!fault) return { header, grads: r.grads };
    this.#fault = undefined;
    console.warn(`Worker ${this.opts.name}: injecting test fault ${fault} at step ${header.step}`);
    switch (fault) {
      case "nan-once": {
        const grads = r.grads.slice();
        grads[0] = NaN;
        return { header, grads };
      }
      case "wrong-length-once":
        return { header, grads: r.grads.subarray(0, r.grads.length - 1) };
      case "wrong-step-once":
        return { header: { ...header, step: header.step + 1 }, grads: r.grads };
      case "wrong-job-once":
        return { header: { ...header, job: `${header.job}x` }, grads: r.grads };
      case "wrong-worker-once":
        return { header: { ...header, worker: `${header.worker}x` }, grads: r.grads };
      default:
        return { header, grads: r.grads };
    }
  }
}

/**
 * The gradient bytes, padded to 8, then each BatchNorm layer's mean and variance, as parts that
 * the message encoder lays end to end (the gradient is copied once, into the message).
 */
function trainBody(gradBytes: Uint8Array, r: SliceResult): ArrayBufferView[] {
  const padding = new Uint8Array(Math.ceil(gradBytes.length / 8) * 8 - gradBytes.length);
  return [gradBytes, padding, ...r.batchStats.flatMap((s) => [s.mean, s.variance])];
}

function reason(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
