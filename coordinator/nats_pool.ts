/**
 * The NATS worker pool: N worker processes compute slices of each step. Weights travel once per step
 * on a subject every worker receives (server fan-out); each worker then gets a request with its slice's
 * row indices and answers with its gradient. Replies are checked (job, step, worker, length, finite
 * values) and a rejected or lost slice is recomputed on another worker, so a step always covers its
 * batch. Results come back in slice order, never arrival order. Protocol: shared/io/nats/protocol.ts.
 */
import { connect, ErrorCode, type NatsConnection, NatsError } from "nats";
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
} from "../shared/io/nats/mod.ts";
import type { NatsServer } from "../shared/io/nats/mod.ts";
import {
  EndHeader,
  type JobSpec,
  jobSubjects,
  JoinRequest,
  ReadyRequest,
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
  /** GPU ids: one local worker per id, with CUDA_VISIBLE_DEVICES set. */
  gpus?: number[];
  backend: string;
  /** Training goes on while at least this many workers live; fewer raise a {@link WorkerLostError}. @default 1 */
  minWorkers?: number;
  /** Seconds to wait for all workers to join. @default 60 */
  joinTimeoutSeconds?: number;
  /** Gradient encoding on the wire. @default "f32" */
  gradEncoding?: "f32" | "bf16";
  /** Job id carried by every subject. @default random */
  job?: string;
  /** Seconds one worker may take for one request (longest step, dataset shipping). @default 120 */
  requestTimeoutSeconds?: number;
  /** Largest message of the embedded server, in bytes. @default 16 MiB */
  maxPayload?: number;
  /** Extra command-line arguments per spawned worker (e.g. `["--fault", "nan-once"]` in tests). */
  workerArgs?: (string[] | undefined)[];
}

/** Raised when too few workers remain to go on. */
export class WorkerLostError extends Error {
  override name = "WorkerLostError";
  constructor(message: string, readonly workerId: string, readonly step: number, options?: ErrorOptions) {
    super(message, options);
  }
}

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

/** A request that failed because its worker is gone. */
class LostSignal extends Error {}

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
  #live: LiveWorker[] = [];
  readonly #known = new Set<string>();
  readonly #lengths = new Map<string, number>();
  #version = 0;
  #currentStep = -1;
  #closed = false;
  #joinService: Service | undefined;
  readonly #times = { publish: [] as number[], round: [] as number[], compute: [] as number[] };

  private constructor(
    engine: Engine,
    opts: NatsPoolOptions,
    nc: NatsConnection,
    server: NatsServer | undefined,
    local: LocalWorkers | undefined,
    job: string,
  ) {
    this.#engine = engine;
    this.#opts = opts;
    this.#nc = nc;
    this.#server = server;
    this.#local = local;
    this.job = job;
    this.#subjects = jobSubjects(job);
    this.#timeoutMs = (opts.requestTimeoutSeconds ?? 120) * 1000;
  }

  /** Validates the options, starts what is needed and waits until every worker reported its model. */
  static async create(engine: Engine, opts: NatsPoolOptions): Promise<NatsPool> {
    const count = validate(opts);
    const job = opts.job ?? crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    let server: NatsServer | undefined;
    let local: LocalWorkers | undefined;
    let nc: NatsConnection | undefined;
    try {
      let url = opts.nats;
      if (url === undefined) {
        server = await startNatsServer({
          maxPayload: opts.maxPayload ?? 16 * 1024 * 1024,
          maxPending: DEFAULT_MAX_PENDING,
        });
        url = server.url;
      }
      nc = await connect({ servers: url, name: `shoal-coordinator-${job}` });
      if (opts.nats === undefined) {
        local = await launchWorkers({
          url,
          job,
          count,
          ...(opts.gpus ? { gpus: opts.gpus } : {}),
          backend: opts.backend,
          ...(opts.workerArgs ? { extraArgs: opts.workerArgs } : {}),
        });
      }
      const pool = new NatsPool(engine, opts, nc, server, local, job);
      await pool.#join(count, url);
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

  /** Announces the job until `count` workers reported a matching model, or fails with the reason. */
  async #join(count: number, url: string): Promise<void> {
    const spec: JobSpec = {
      job: this.job,
      model: this.#engine.network.toConfig(),
      loss: this.#engine.spec.loss,
      metrics: this.#engine.spec.metrics.map((m) => ({ name: m.name, fn: m.fn })),
      seed: this.#engine.spec.seed,
      backend: this.#opts.backend,
      gradEncoding: this.#opts.gradEncoding ?? "f32",
    };
    const accepted = new Set<string>();
    let failure: Error | undefined;
    const ready: LiveWorker[] = [];
    this.#joinService = serve(this.#nc, this.#subjects.join, (msg) => {
      const { header } = decodeMessage(msg.data, JoinRequest);
      let reason: string | undefined;
      if (header.job !== this.job) reason = `it asked for job ${header.job}`;
      else if (accepted.has(header.worker)) {
        reason = `the name ${header.worker} is taken: give each worker its own --name`;
      } else if (accepted.size >= count) {
        reason = `job ${this.job} has its ${count} workers; joining mid-run is not supported`;
      }
      if (reason === undefined) accepted.add(header.worker);
      msg.respond(
        encodeMessage(reason === undefined ? { accepted: true, spec } : { accepted: false, reason }),
      );
    });
    const readyService = serve(this.#nc, this.#subjects.ready, (msg) => {
      const { header } = decodeMessage(msg.data, ReadyRequest);
      msg.respond(encodeMessage({ ok: true }));
      if (!accepted.has(header.worker)) return;
      if (header.error) {
        failure ??= new Error(`Worker ${header.worker} could not set up job ${this.job}: ${header.error}`);
        return;
      }
      const mismatch = this.#compareManifest(header);
      if (mismatch) failure ??= mismatch;
      else ready.push({ name: header.worker, backend: header.backend, device: header.device });
    });
    const exited = this.#local?.workers.map((w) =>
      w.status.then((s) =>
        failure ??= new Error(`Worker ${w.name} (pid ${w.pid}) exited with code ${s.code} while joining`)
      )
    );
    void exited;
    const timeoutMs = (this.#opts.joinTimeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeoutMs;
    try {
      while (ready.length < count && !failure && Date.now() < deadline) {
        this.#nc.publish(this.#subjects.hello, encodeMessage({ job: this.job, wanted: count }));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await readyService.stop();
    }
    if (failure) throw failure;
    if (ready.length < count) {
      throw new Error(
        `Cannot start job ${this.job} as ${count} workers were needed and ${ready.length} joined within ${
          timeoutMs / 1000
        } s (${accepted.size} accepted: ${[...accepted].join(", ") || "none"}). Start workers with ` +
          `\`deno task worker --nats ${url}\` (add --job ${this.job} to bind one to this job), or raise joinTimeoutSeconds.`,
      );
    }
    ready.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
    this.#live = ready;
    for (const w of ready) this.#known.add(w.name);
    const backends = new Set(ready.map((w) => w.backend));
    if (backends.size > 1) {
      console.warn(`Workers of job ${this.job} run different backends: ${[...backends].join(", ")}`);
    }
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
    const header = (probe: boolean): WorkRequest => ({
      kind: "data",
      job: this.job,
      name,
      hash,
      inputs: data.inputs.map((a) => a.shape),
      y: data.y ? data.y.shape : null,
      probe,
    });
    const ship = async (worker: LiveWorker) => {
      for (const probe of [true, false]) {
        const reply = await this.#request(worker, header(probe), probe ? undefined : body);
        if (!reply) return;
        const h = reply.header;
        if (h.kind === "error") {
          throw new Error(`Worker ${worker.name} could not load dataset "${name}": ${h.error}`);
        }
        if (h.kind === "data" && h.cached) return;
      }
      throw new Error(`Worker ${worker.name} did not keep dataset "${name}" (${hash})`);
    };
    await Promise.all([...this.#live].map(ship));
    this.#requireWorkers("shipping data");
    this.#lengths.set(name, data.length);
  }

  async trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    this.#checkOpen();
    this.#currentStep = req.step;
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
    let computeMax = 0;
    const results = await Promise.all(slices.map(([start, end], k) => {
      const indices = req.indices.slice(start, end);
      const header: WorkRequest = {
        kind: "train",
        job: this.job,
        data,
        version,
        step: req.step,
        rowOffset: start,
        encoding: this.#opts.gradEncoding ?? "f32",
      };
      let nonFinite = 0;
      return this.#onSomeWorker(
        `step ${req.step} slice ${k} (rows ${start}..${end})`,
        k,
        header,
        indices,
        (r, w) => {
          const accepted = this.#acceptTrain(r, w, req.step, end - start, nonFinite > 0);
          if (typeof accepted === "string" && accepted.startsWith("non-finite")) nonFinite++;
          if (typeof accepted !== "string") computeMax = Math.max(computeMax, accepted.computeMs);
          return typeof accepted === "string" ? accepted : accepted.result;
        },
      );
    }));
    this.#times.publish.push(t1 - t0);
    this.#times.round.push(performance.now() - t1);
    this.#times.compute.push(computeMax);
    return results;
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
    const grads = decodeF32(reply.body.subarray(0, gradBytes), h.encoding, new Float32Array(expected));
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
    const version = await this.#publishWeights(params, state);
    const chunks = Math.ceil(length / batchSize);
    const parts = Math.min(this.#live.length, chunks);
    const runs: [number, number][] = [];
    for (let k = 0; k < parts; k++) {
      runs.push([Math.floor((k * chunks) / parts), Math.floor(((k + 1) * chunks) / parts)]);
    }
    return await Promise.all(runs.map(([first, end], k) => {
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
      );
    }));
  }

  /** Publishes params ‖ state once for all workers; returns the version requests name. */
  async #publishWeights(params: Float32Array, state: Float32Array): Promise<number> {
    const version = ++this.#version;
    const body = new Float32Array(params.length + state.length);
    body.set(params);
    body.set(state, params.length);
    const header: WeightsHeader = {
      job: this.job,
      version,
      paramsLength: params.length,
      stateLength: state.length,
    };
    await publishLarge(this.#nc, this.#subjects.weights, header, body);
    return version;
  }

  /**
   * Runs one request on the `preferred`-th live worker; a rejected reply or a lost worker moves it to
   * the next live worker. `accept` returns the result or the reason for rejecting the reply.
   */
  async #onSomeWorker<T>(
    what: string,
    preferred: number,
    header: WorkRequest,
    body: ArrayBufferView | undefined,
    accept: (reply: { header: WorkReply; body: Uint8Array }, worker: LiveWorker) => T | string,
  ): Promise<T> {
    const attempts = 2 * this.#known.size + 2;
    let lastReason = "";
    for (let attempt = 0; attempt < attempts; attempt++) {
      const worker = this.#live[(preferred + attempt) % this.#live.length];
      if (!worker) break;
      const reply = await this.#request(worker, header, body);
      if (!reply) continue;
      const result = accept(reply, worker);
      if (typeof result !== "string") return result;
      lastReason = result;
      console.warn(
        `Rejected the reply of worker ${worker.name} for ${what} in job ${this.job}: ${result}; recomputing it`,
      );
    }
    this.#requireWorkers(what);
    throw new Error(
      `Cannot complete ${what} in job ${this.job} after ${attempts} attempts: last rejection: ${lastReason}`,
    );
  }

  /** One request to one worker; `undefined` (and the worker dropped) when the worker is gone. */
  async #request(
    worker: LiveWorker,
    header: WorkRequest,
    body: ArrayBufferView | undefined,
  ): Promise<{ header: WorkReply; body: Uint8Array } | undefined> {
    const subject = this.#subjects.worker(worker.name);
    const watch = new AbortController();
    const watcher = this.#watch(subject, watch);
    try {
      return await requestLarge(this.#nc, subject, header, body, WorkReply, {
        timeout: this.#timeoutMs,
        signal: watch.signal,
      });
    } catch (error) {
      const why = error instanceof LostSignal
        ? error.message
        : error instanceof NatsError && error.code === ErrorCode.NoResponders
        ? "no responders on its subject (the process is gone)"
        : error instanceof NatsError && error.code === ErrorCode.Timeout
        ? `no reply within ${this.#timeoutMs / 1000} s`
        : undefined;
      if (why === undefined) throw error;
      this.#drop(worker, why);
      return undefined;
    } finally {
      watch.abort();
      await watcher;
    }
  }

  /** While a request runs, checks every second that the worker still subscribes; aborts when not. */
  async #watch(subject: string, watch: AbortController): Promise<void> {
    while (!watch.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        watch.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      if (watch.signal.aborted) return;
      try {
        await this.#nc.request(`${subject}.alive`, new Uint8Array(0), { timeout: 500 });
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
    console.warn(
      `Lost worker ${worker.name} of job ${this.job} at step ${this.#currentStep}: ${why}; ` +
        `continuing with ${this.#live.length} worker(s)`,
    );
  }

  #requireWorkers(what: string): void {
    const min = this.#opts.minWorkers ?? 1;
    if (this.#live.length < Math.max(1, min)) {
      throw new WorkerLostError(
        `Cannot go on with ${what} in job ${this.job} as ${this.#live.length} worker(s) remain and minWorkers is ${min}: ` +
          "start more workers or lower minWorkers",
        [...this.#known].filter((n) => !this.#live.some((w) => w.name === n)).join(","),
        this.#currentStep,
      );
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`Cannot use the pool of job ${this.job} as it was closed`);
  }

  /** Ends the job on the workers, closes the connection, stops spawned workers and the embedded server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#nc.publish(
        this.#subjects.end,
        encodeMessage({ job: this.job, reason: "closed" } satisfies EndHeader),
      );
      await this.#joinService?.stop();
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
  return count;
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
