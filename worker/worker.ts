/**
 * A generic Shoal worker: joins a job announced over NATS, rebuilds the model from its Keras config,
 * reports its weights manifest, then computes training slices, evaluation sums and predictions until
 * the job ends (job_runner.ts). The protocol is described in shared/io/protocol/messages.ts.
 *
 * A job ends for a worker when the coordinator ends it, when the coordinator lets it go (its data
 * connection closes, or the heartbeat no longer names it: it joins again), or when no heartbeat came
 * for the announced number of intervals while connected (the coordinator vanished). A worker bound to
 * a job (`job`) returns when the coordinator ends the job; after a drop, a vanished coordinator or a
 * stopped run it waits for the job's hello again (the coordinator's rerun resumes under the same id),
 * at most `joinTimeoutSeconds`. An unbound one waits for the next hello.
 * The NATS connection reconnects without limit, so a restarted server interrupts a job without
 * ending it.
 */
import { Events, type Msg, type NatsConnection } from "npm:nats@2.29.3";
import { connectResilient, decodeMessage, requestLarge, tuneAllocator } from "../shared/io/nats/mod.ts";
import type { NatsAuth } from "../shared/io/nats/mod.ts";
import { ANY_HELLO, Hello, type JobSpec, jobSubjects, JoinReply } from "../shared/io/protocol/mod.ts";
import type { BackendName } from "../shared/model/mod.ts";
import type { DataTls, ListenAddress } from "../shared/io/data_plane/mod.ts";
import type { CachedDataset } from "./dataset.ts";
import { type JobOutcome, JobRunner, type Link } from "./job_runner.ts";

export type { JobOutcome } from "./job_runner.ts";

/** The fields of a train reply a hook may change. */
export interface TrainReplyFields {
  job: string;
  worker: string;
  step: number;
}

/**
 * Places where a program that wraps the worker can act, e.g. a test harness that makes a worker
 * misbehave to check the coordinator's defences (tests/support/faulty_worker.ts).
 */
export interface WorkerHooks {
  /** Called when a training request arrives, before it is computed. */
  beforeTrain?(step: number): void;
  /** May change a training reply (its identifying fields, its gradient) before it is sent. */
  trainReply?<H extends TrainReplyFields>(
    reply: { header: H; grads: Float32Array },
  ): { header: H; grads: Float32Array };
}

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
  /**
   * Seconds a worker bound to `job` waits for the job's hello, at the start and after losing the
   * coordinator, before it gives up. @default no limit
   */
  joinTimeoutSeconds?: number;
  /** No line for routine events (connected, joined): workers spawned by a coordinator. @default false */
  quiet?: boolean;
  /** Extension points for programs that wrap the worker (tests inject faults through them). */
  hooks?: WorkerHooks;
  /** Ends the worker (leaves the job, closes the connection). */
  signal?: AbortSignal;
  /**
   * Where to listen for ring neighbours over TCP when a job reduces on a ring: a fixed port a firewall
   * or a NetworkPolicy can admit (a host of 0.0.0.0 or :: is advertised as this host's first
   * non-loopback IPv4 address). @default a free port, on loopback when the coordinator listens there
   */
  ringListen?: ListenAddress;
  /**
   * PEM certificate and key of the ring listener: with a data plane over TLS, the ring listens and
   * dials over TLS too (neighbours verify with the CA of `auth.tls.caFile`). Without them a job over
   * a TLS data plane keeps this worker out of rings (on the star).
   */
  ringTls?: DataTls;
  /** Milliseconds to wait for the weights a request names. @default 60000 */
  weightsTimeoutMs?: number;
}

/**
 * How a worker's run ended: the bound job `ended`, its model was `refused`, no hello of the bound job
 * came within `joinTimeoutSeconds` (`timeout`), or the signal `aborted` it.
 */
export type WorkerExit = "ended" | "refused" | "timeout" | "aborted";

/** Connects and serves jobs until `opts.job` ends or `opts.signal` aborts. */
export async function runWorker(opts: WorkerOptions): Promise<WorkerExit> {
  tuneAllocator();
  const nc = await connectResilient(opts.auth, { servers: opts.nats, name: `shoal-worker-${opts.name}` });
  if (!opts.quiet) {
    console.error(
      `Worker ${opts.name} (pid ${Deno.pid}) connected to ${opts.nats}, waiting for ${opts.job ?? "any job"}`,
    );
  }
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
      const joined = await awaitJob(nc, opts, abort);
      if (opts.signal?.aborted) return "aborted";
      if (!joined) return "timeout";
      const job = new JobRunner(nc, joined.spec, opts, cache, link, joined.rttMs);
      const outcome: JobOutcome = await job.run(abort);
      if (opts.signal?.aborted) return "aborted";
      if (opts.job !== undefined && (outcome === "ended" || outcome === "refused")) return outcome;
      console.error(
        `Worker ${opts.name}: left job ${joined.spec.job} (${outcome}); waiting for ${opts.job ?? "any job"}`,
      );
    }
  } finally {
    await nc.drain().catch(() => {});
  }
}

/** Waits for a hello of a job that accepts this worker; undefined when aborted or out of time. */
async function awaitJob(
  nc: NatsConnection,
  opts: WorkerOptions,
  abort: Promise<void>,
): Promise<{ spec: JobSpec; rttMs: number } | undefined> {
  const sub = nc.subscribe(opts.job === undefined ? ANY_HELLO : jobSubjects(opts.job).hello);
  const stop = abort.then(() => sub.unsubscribe());
  const limit = opts.job === undefined ? undefined : opts.joinTimeoutSeconds;
  const timer = limit === undefined ? undefined : setTimeout(() => {
    console.error(
      `Worker ${opts.name}: job ${opts.job} did not announce itself within ${limit} s (--join-timeout); giving up`,
    );
    sub.unsubscribe();
  }, limit * 1000);
  try {
    for await (const msg of sub) {
      const joined = await tryJoin(nc, msg, opts).catch((error) => {
        console.warn(`Worker ${opts.name}: joining failed: ${reason(error)}`);
        return undefined;
      });
      if (joined) return joined;
    }
    return undefined;
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
    void stop;
  }
}

async function tryJoin(
  nc: NatsConnection,
  msg: Msg,
  opts: WorkerOptions,
): Promise<{ spec: JobSpec; rttMs: number } | undefined> {
  const { header: hello } = decodeMessage(msg.data, Hello);
  const request = { job: hello.job, worker: opts.name, pid: Deno.pid, host: Deno.hostname() };
  const t0 = performance.now();
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
  const rttMs = performance.now() - t0;
  if (!reply.accepted || !reply.spec) {
    if (opts.job !== undefined) {
      console.warn(`Worker ${opts.name}: job ${hello.job} refused it: ${reply.reason}`);
    }
    return undefined;
  }
  return { spec: reply.spec, rttMs };
}

function reason(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
