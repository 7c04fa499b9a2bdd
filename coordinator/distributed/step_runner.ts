/**
 * Runs steps, evaluations and predictions on the live members of a {@link Roster}: one slice of the
 * batch (or run of chunks) per member, each sent over the member's link, every reply checked (job,
 * step, worker, length, finite values) before it counts. Results come back in slice order, never
 * arrival order.
 *
 * Faults: a lost member is dropped and its slice recomputed, with the same rows and row offset, on
 * another member; a member that misses its deadline is lost too. A deadline is a factor times the
 * member's slowest recent round of that kind (scaled to the rows asked), and for its first request of
 * a kind one derived from what the worker measured at setup (a forward pass, its round trip) and the
 * model's size. When the slices exchange partial results mid-step (BatchNormalization), a slice cannot
 * be recomputed alone: a lost member or a rejected slice aborts the attempt for all slices and the step
 * runs again. A step reduced on a ring (allreduce.ts) is computed together too: a lost or stopped member
 * aborts the ring for all, and the attempt runs again on the survivors with a new ring; when a member
 * misses its deadline there, every member of the ring is probed first and the silent ones are dropped
 * (the others only waited for them). When the connection to NATS drops, the attempt runs again under new weights (version),
 * after the host waited for it; a step is computed for the trainer once, so no update is applied twice.
 *
 * @module
 */
import type { Body, FloatEncoding } from "../../shared/io/nats/mod.ts";
import {
  decodePredict,
  decodeTrainReply,
  encodeIndices,
  type WorkRequest,
} from "../../shared/io/protocol/mod.ts";
import {
  type Engine,
  type EvalResult,
  firstNonFinite,
  metricOffsets,
  type SliceResult,
} from "../../shared/model/mod.ts";
import type { StepRequest } from "../pool.ts";
import { reduceSlices } from "../reduce.ts";
import { shardBounds } from "../../shared/allreduce/mod.ts";
import type { PoolEvents } from "./events.ts";
import { ConnectionInterruptedError, LinkLostError, LinkTimeoutError, type Reply } from "./links.ts";
import type { Member, Roster } from "./roster.ts";
import { median } from "../../shared/stats.ts";

/** Options of the {@link StepRunner}; the pool documents them (DistributedPoolOptions). */
export interface StepRunnerOptions {
  job: string;
  gradEncoding: FloatEncoding;
  stepTimeoutFactor: number;
  stepTimeoutFloorMs: number;
  requestTimeoutMs: number;
  /** Aborts the attempt in flight (a stop request): its requests reject with the signal's reason. */
  signal?: AbortSignal;
}

/** What the runner needs from its pool between and around attempts. */
export interface StepHost {
  /** A step boundary: admits joiners, waits below `minWorkers` (or throws). */
  boundary(): Promise<void>;
  /** After an interrupted attempt: waits for the connection and the members. */
  recover(): Promise<void>;
  /**
   * Sends params ‖ state to every live member, or down the chain of `ring` (its members in ring
   * order); returns the version requests name.
   */
  publishWeights(params: Float32Array, state: Float32Array, ring?: readonly Member[]): Promise<number>;
  /** True when the slices of an attempt on `members` (slice k on members[k]) reduce on a ring. */
  ringFor(members: readonly Member[]): boolean;
  /**
   * `member` could not dial the ring address of its neighbour `peer`: the pool stops putting `peer` in
   * a ring (the step runs again on the star).
   */
  ringUnreachable(member: Member, peer: { worker: string; addresses: string[]; reason: string }): void;
  /** Tells the members of a failed ring attempt to stop waiting in it. */
  abortRing(version: number, reason: string, members: readonly Member[]): void;
  /** True when `member` answers a probe promptly (false for a stopped or lost one). */
  probe(member: Member): Promise<boolean>;
  /**
   * The slice exchange of attempt `version` runs with `workers[k]` on slice k; true when the slices
   * exchange in memory they share rather than through the coordinator.
   */
  beginExchange(version: number, workers: readonly string[]): boolean;
  /** Wakes the slices of a failed attempt that wait in its exchange. */
  abortExchange(version: number, reason: string): void;
}

/** The attempt must run again: the connection was interrupted, or no worker is left to run it. */
export class RetryAttempt extends Error {
  override name = "RetryAttempt";
}

/** Round times kept per worker and kind for its step deadline. */
const ROUNDS_KEPT = 20;
/** A link assumed at least this fast (bytes per millisecond) for a first deadline: 25 MB/s. */
const SLOWEST_LINK_BYTES_PER_MS = 25_000;
/** A backward pass costs about this many forward passes. */
const BACKWARD_FACTOR = 3;

/** What the attempts at one step have seen. */
interface StepTally {
  /** Attempts given up because a slice was lost or rejected (slices computed together). */
  failures: number;
  /** Replies rejected for non-finite values; a second one is accepted (the model diverged). */
  nonFinite: number;
}

/** Median phase timings of the training steps, in milliseconds. */
export type StepTimings = {
  steps: number;
  /** Sending the weights (encode + hand to the sockets or the server). */
  publish_ms: number;
  /** Weights sent → last slice decoded. */
  round_ms: number;
  /** Longest worker-reported forward + backward time of the step. */
  compute_ms: number;
  /** round − compute of each step: transfer, queueing and (de)coding. */
  transfer_ms: number;
  /** Train replies (all steps) whose gradients were read from memory shared with the worker. */
  shared_replies: number;
  /** Attempts whose slices exchanged BatchNorm statistics in memory they share (not through the coordinator). */
  shared_exchanges: number;
  /** Steps reduced on a ring of workers (the others on the star). */
  ring_steps: number;
};

/** See the module doc. */
export class StepRunner {
  readonly #roster: Roster;
  readonly #engine: Engine;
  readonly #host: StepHost;
  readonly #events: PoolEvents;
  readonly #opts: StepRunnerOptions;
  /** Round times per `worker:kind`. */
  readonly #rounds = new Map<string, { ms: number; rows: number }[]>();
  readonly #times = {
    publish: [] as number[],
    round: [] as number[],
    compute: [] as number[],
    transfer: [] as number[],
    sharedReplies: 0,
    sharedExchanges: 0,
    ringSteps: 0,
  };
  /** The reduced gradient of ring steps, assembled from the shards (reused). */
  #ringGrads: Float32Array | undefined;
  /** The step being computed (−1 before the first), and the last one computed. */
  currentStep = -1;
  #lastStep = -1;

  constructor(roster: Roster, engine: Engine, host: StepHost, events: PoolEvents, opts: StepRunnerOptions) {
    this.#roster = roster;
    this.#engine = engine;
    this.#host = host;
    this.#events = events;
    this.#opts = opts;
  }

  /** Median phase timings of the training steps so far, or of those after the first `from`. */
  timings(from = 0): StepTimings {
    const t = this.#times;
    return {
      steps: t.round.length,
      publish_ms: median(t.publish.slice(from)),
      round_ms: median(t.round.slice(from)),
      compute_ms: median(t.compute.slice(from)),
      transfer_ms: median(t.transfer.slice(from)),
      shared_replies: t.sharedReplies,
      shared_exchanges: t.sharedExchanges,
      ring_steps: t.ringSteps,
    };
  }

  /** Forgets a worker's round times (it rejoined: its first request gets a first deadline again). */
  forgetRounds(worker: string): void {
    for (const key of [...this.#rounds.keys()]) if (key.startsWith(`${worker}:`)) this.#rounds.delete(key);
  }

  async trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    if (req.step <= this.#lastStep) {
      throw new RangeError(
        `Cannot run step ${req.step} of job ${this.#opts.job} as step ${this.#lastStep} already ran: ` +
          "step ids must increase so that no optimizer update is applied twice",
      );
    }
    this.currentStep = req.step;
    const tally: StepTally = { failures: 0, nonFinite: 0 };
    const results = await this.retrying(
      `step ${req.step}`,
      (attempt) => this.#trainOnce(data, req, attempt, tally),
    );
    this.#lastStep = req.step;
    return results;
  }

  /**
   * One attempt at a step: fresh weights version, one slice per live member. When the model's slices
   * exchange partial results, a lost member or a rejected slice aborts the attempt for all slices.
   */
  async #trainOnce(
    data: string,
    req: StepRequest,
    attempt: AbortController,
    tally: StepTally,
  ): Promise<SliceResult[]> {
    const t0 = performance.now();
    const n = req.indices.length;
    const parts = this.#roster.live.length;
    const slices: [number, number][] = [];
    for (let k = 0; k < parts; k++) {
      const start = Math.floor((k * n) / parts), end = Math.floor(((k + 1) * n) / parts);
      if (end > start) slices.push([start, end]);
    }
    const members = this.#roster.live.slice(0, slices.length);
    const ring = slices.length > 1 && this.#host.ringFor(members);
    const version = await this.#host.publishWeights(req.params, req.state, ring ? members : undefined);
    const t1 = performance.now();
    const exchange = this.#engine.network.exchangesBetweenSlices && slices.length > 1;
    const together = exchange || ring;
    const paramCount = this.#engine.network.params.length;
    const blame = ring ? this.#ringBlame(members) : undefined;
    const sharedExchange = exchange &&
      this.#host.beginExchange(version, slices.map((_, k) => this.#roster.live[k]!.name));
    if (sharedExchange) this.#times.sharedExchanges++;
    let computeMax = 0;
    let results: SliceResult[];
    try {
      results = await settleAll(
        slices.map(([start, end], k) => {
          const ahead = nextSlice(req.next, k, parts);
          const header: WorkRequest = {
            kind: "train",
            job: this.#opts.job,
            data,
            version,
            step: req.step,
            rowOffset: start,
            slice: k,
            slices: slices.length,
            encoding: this.#opts.gradEncoding,
            ...(sharedExchange ? { sharedExchange } : {}),
            ...(ahead.length > 0 ? { ahead: ahead.length } : {}),
            ...(ring ? { ring: { total: n } } : {}),
          };
          let nonFinite = tally.nonFinite;
          return this.#onSomeMember(
            `step ${req.step} slice ${k} (rows ${start}..${end})`,
            k,
            header,
            encodeIndices(concat(req.indices.subarray(start, end), ahead)),
            (reply, member) => {
              const h = reply.header;
              if (ring && h.kind === "error" && h.ringUnreachable) {
                this.#host.ringUnreachable(member, h.ringUnreachable);
              }
              const shard = ring ? shardBounds(paramCount, slices.length, k) : undefined;
              const accepted = this.#acceptTrain(reply, member, req.step, end - start, nonFinite > 0, shard);
              if (typeof accepted === "string" && accepted.startsWith("non-finite")) {
                nonFinite++;
                tally.nonFinite++;
              }
              if (typeof accepted !== "string") {
                computeMax = Math.max(computeMax, accepted.computeMs);
                if (reply.shared) this.#times.sharedReplies++;
              }
              return typeof accepted === "string" ? accepted : accepted.result;
            },
            attempt.signal,
            end - start,
            !together,
            blame,
          );
        }),
        attempt,
      );
    } catch (error) {
      if (!together) throw error;
      if (exchange) this.#host.abortExchange(version, reasonOf(error));
      if (ring) this.#host.abortRing(version, reasonOf(error), members);
      if (error instanceof RetryAttempt && ++tally.failures > 2 * this.#roster.known.size + 2) {
        throw new Error(
          `Cannot complete step ${req.step} in job ${this.#opts.job} after ${tally.failures} attempts: ${error.message}`,
        );
      }
      throw error;
    }
    const round = performance.now() - t1;
    this.#times.publish.push(t1 - t0);
    this.#times.round.push(round);
    this.#times.compute.push(computeMax);
    this.#times.transfer.push(round - computeMax);
    if (!ring) return results;
    this.#times.ringSteps++;
    // The shards are the reduced gradient; the rest (sums, BatchNorm statistics) reduces as on the star.
    const grads = this.#ringGrads?.length === paramCount
      ? this.#ringGrads
      : (this.#ringGrads = new Float32Array(paramCount));
    results.forEach((r, k) => grads.set(r.grads, shardBounds(paramCount, slices.length, k)[0]));
    const rest = reduceSlices(results.map((r) => ({ ...r, grads: new Float32Array(0) })));
    return [{ ...rest, grads }];
  }

  /**
   * What a ring attempt does when one member misses its deadline: the others may only be waiting for
   * a stopped neighbour, so every member is probed and the silent ones are dropped; when all answer,
   * the member that missed it is. One probe round per attempt.
   */
  #ringBlame(members: readonly Member[]): (missed: Member, timeoutMs: number) => Promise<void> {
    let blaming: Promise<void> | undefined;
    return (missed, timeoutMs) =>
      blaming ??= (async () => {
        const answered = await Promise.all(members.map((m) => this.#host.probe(m)));
        const silent = members.filter((_, i) => !answered[i]);
        const seconds = timeoutMs / 1000;
        if (silent.length === 0) silent.push(missed);
        for (const member of silent) {
          const reason = member === missed
            ? `no reply within its step deadline of ${seconds.toFixed(1)} s (ring)`
            : `no answer to a probe after worker ${missed.name} missed its ring step deadline of ${
              seconds.toFixed(1)
            } s`;
          this.#roster.drop(member, reason, this.currentStep, seconds);
        }
      })();
  }

  /**
   * Runs `attempt` at a step boundary; when it must run again (the connection dropped, or no member
   * was left), recovers, then runs it again.
   */
  async retrying<T>(what: string, attempt: (controller: AbortController) => Promise<T>): Promise<T> {
    const stop = this.#opts.signal;
    for (let tries = 1;; tries++) {
      await this.#host.boundary();
      const controller = new AbortController();
      const onStop = () => controller.abort(stop!.reason);
      stop?.addEventListener("abort", onStop, { once: true });
      if (stop?.aborted) onStop();
      try {
        return await attempt(controller);
      } catch (error) {
        controller.abort();
        if (stop?.aborted) throw stop.reason;
        if (!(error instanceof RetryAttempt)) throw error;
        this.#events.emit({ type: "attempt-retried", what, reason: error.message, attempt: tries + 1 });
        await this.#host.recover();
      } finally {
        stop?.removeEventListener("abort", onStop);
      }
    }
  }

  /** A checked slice result, or why the reply is rejected. */
  #acceptTrain(
    reply: Reply,
    member: Member,
    step: number,
    count: number,
    nonFiniteSeen: boolean,
    shard?: [number, number],
  ): { result: SliceResult; computeMs: number } | string {
    const h = reply.header;
    if (h.kind === "error") return `the worker failed: ${h.error}`;
    if (h.job !== this.#opts.job) return `it is for job ${h.job}, not ${this.#opts.job}`;
    if (!this.#roster.known.has(h.worker)) return `it comes from unknown worker "${h.worker}"`;
    if (h.worker !== member.name) return `worker ${h.worker} answered a request sent to ${member.name}`;
    if (h.kind !== "train") return `it is a ${h.kind} reply, not a train reply`;
    if (h.step !== step) return `it is for step ${h.step}, not the current step ${step}`;
    if (h.count !== count) return `it covers ${h.count} samples, not the slice's ${count}`;
    if (shard && (h.shard?.start !== shard[0] || h.shard?.end !== shard[1])) {
      return `it holds ${
        h.shard ? `shard ${h.shard.start}..${h.shard.end}` : "a whole gradient"
      }, not the ring's shard ${shard[0]}..${shard[1]}`;
    }
    if (!shard && h.shard) return `it holds a ring shard where the step reduces on the star`;
    const result = decodeTrainReply(h, reply.body, this.#engine.network.params.length);
    if (typeof result === "string") return result;
    const vouched = reply.gradsFinite || (h.gradsFinite === true && h.encoding === "f32" && !h.shard);
    const bad = (vouched ? undefined : firstNonFinite(result.grads)) ??
      (result.batchStats.some((s) =>
          firstNonFinite(s.mean) !== undefined || firstNonFinite(s.variance) !== undefined
        )
        ? -2
        : undefined) ??
      ([h.lossSum, h.regLoss, ...h.metricSums].some((v) => !Number.isFinite(v)) ? -1 : undefined);
    if (bad !== undefined && !nonFiniteSeen) {
      return `non-finite values (first at ${
        bad === -1 ? "loss/metric sums" : bad === -2 ? "BatchNorm statistics" : `index ${bad}`
      })`;
    }
    if (bad !== undefined) {
      this.#events.emit({
        type: "warning",
        message:
          `step ${step}: non-finite gradient reproduced on worker ${member.name}: accepting it (the model diverged)`,
      });
    }
    return { result, computeMs: h.computeMs };
  }

  async evaluate(
    data: string,
    length: number,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
  ): Promise<EvalResult> {
    const chunks = await this.#chunked(data, length, params, state, batchSize, "eval", (r) => {
      const h = r.header;
      return h.kind === "eval" ? h.chunks : `it is a ${h.kind} reply, not an eval reply`;
    });
    const total: EvalResult = {
      count: 0,
      lossSum: 0,
      metricSums: new Array(metricOffsets(this.#engine.spec.metrics).total).fill(0),
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
    length: number,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
  ): Promise<Float32Array> {
    const parts = await this.#chunked(data, length, params, state, batchSize, "predict", (r) => {
      const h = r.header;
      if (h.kind !== "predict") return `it is a ${h.kind} reply, not a predict reply`;
      return decodePredict(h, r.body);
    });
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Splits the `batchSize` chunks of a dataset in contiguous runs over the members; results in chunk order. */
  async #chunked<T>(
    data: string,
    length: number,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
    kind: "eval" | "predict",
    accept: (reply: Reply) => T | string,
  ): Promise<T[]> {
    return await this.retrying(`${kind} of "${data}"`, async (attempt) => {
      const version = await this.#host.publishWeights(params, state);
      const chunks = Math.ceil(length / batchSize);
      const parts = Math.min(this.#roster.live.length, chunks);
      const runs: [number, number][] = [];
      for (let k = 0; k < parts; k++) {
        runs.push([Math.floor((k * chunks) / parts), Math.floor(((k + 1) * chunks) / parts)]);
      }
      return await settleAll(
        runs.map(([first, end], k) => {
          const header: WorkRequest = { kind, job: this.#opts.job, data, version, batchSize, first, end };
          return this.#onSomeMember(
            `${kind} of "${data}" chunks ${first}..${end}`,
            k,
            header,
            undefined,
            (r, member) => {
              const h = r.header;
              if (h.kind === "error") return `the worker failed: ${h.error}`;
              if (h.job !== this.#opts.job) return `it is for job ${h.job}, not ${this.#opts.job}`;
              if (h.worker !== member.name) {
                return `worker ${h.worker} answered a request sent to ${member.name}`;
              }
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

  /**
   * Runs one request on the `preferred`-th live member; a rejected reply or a lost member moves it to
   * the next live member (with `failover`), or fails the attempt (without). `accept` returns the
   * result or the reason for rejecting the reply. `rows` scales the deadline.
   */
  async #onSomeMember<T>(
    what: string,
    preferred: number,
    header: WorkRequest,
    body: Body | undefined,
    accept: (reply: Reply, member: Member) => T | string,
    signal: AbortSignal,
    rows: number,
    failover = true,
    onMissed?: (member: Member, timeoutMs: number) => Promise<void>,
  ): Promise<T> {
    const attempts = 2 * this.#roster.known.size + 2;
    let lastReason = "";
    for (let attempt = 0; attempt < attempts; attempt++) {
      signal.throwIfAborted();
      const live = this.#roster.live;
      const member = live[(preferred + attempt) % live.length];
      if (!member) throw new RetryAttempt(`no worker is left to compute ${what}`);
      const reply = await this.request(member, header, body, signal, rows, onMissed);
      if (!reply && !failover) {
        // In a ring, a member that missed its deadline may stay: a probe found the one it waited for.
        const how = this.#roster.live.includes(member) ? "waited past its deadline" : "was lost";
        throw new RetryAttempt(`worker ${member.name} ${how} computing ${what}`);
      }
      if (!reply) continue;
      const result = accept(reply, member);
      if (typeof result !== "string") return result;
      lastReason = result;
      this.#events.emit({
        type: "reply-rejected",
        worker: member.name,
        what,
        reason: result,
        recompute: failover,
      });
      if (!failover) throw new RetryAttempt(`worker ${member.name}'s reply was rejected: ${result}`);
    }
    throw new Error(
      `Cannot complete ${what} in job ${this.#opts.job} after ${attempts} attempts: last rejection: ${lastReason}`,
    );
  }

  /**
   * One request to one member; `undefined` (and the member dropped) when it is lost or missed its
   * deadline (with `onMissed`, that decides whom to drop for a missed deadline). Throws
   * {@link RetryAttempt} when the coordinator's connection was interrupted.
   */
  async request(
    member: Member,
    header: WorkRequest,
    body: Body | undefined,
    signal: AbortSignal,
    rows = 0,
    onMissed?: (member: Member, timeoutMs: number) => Promise<void>,
  ): Promise<Reply | undefined> {
    const timeoutMs = this.deadlineMs(member, header.kind, rows);
    const t0 = performance.now();
    try {
      const reply = await member.link.request(header, body, { timeoutMs, signal });
      const key = `${member.name}:${header.kind}`;
      const rounds = this.#rounds.get(key) ?? [];
      rounds.push({ ms: performance.now() - t0, rows });
      if (rounds.length > ROUNDS_KEPT) rounds.shift();
      this.#rounds.set(key, rounds);
      return reply;
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof ConnectionInterruptedError) throw new RetryAttempt(error.message);
      if (!(error instanceof LinkLostError || error instanceof LinkTimeoutError)) throw error;
      if (error instanceof LinkTimeoutError && onMissed) {
        await onMissed(member, timeoutMs);
        return undefined;
      }
      const missed = error instanceof LinkTimeoutError ? timeoutMs / 1000 : undefined;
      this.#roster.drop(member, error.message, this.currentStep, missed);
      return undefined;
    }
  }

  /** The longest wait for one member's reply; see the module doc. */
  deadlineMs(member: Member, kind: WorkRequest["kind"], rows: number): number {
    const { requestTimeoutMs, stepTimeoutFactor, stepTimeoutFloorMs } = this.#opts;
    if (kind === "data" || kind === "leave") return requestTimeoutMs;
    const rounds = this.#rounds.get(`${member.name}:${kind}`);
    let expected: number;
    if (rounds?.length) {
      expected = Math.max(...rounds.map((r) => r.ms * Math.max(1, rows / Math.max(1, r.rows))));
    } else {
      const forward = member.warmup.ms * Math.max(1, rows) / member.warmup.rows;
      const compute = kind === "train" ? forward * (1 + BACKWARD_FACTOR) : forward;
      const bytes = 2 * 4 * (this.#engine.network.params.length + this.#engine.network.state.length);
      expected = compute + bytes / SLOWEST_LINK_BYTES_PER_MS + 2 * member.rttMs;
    }
    return Math.min(requestTimeoutMs, Math.max(stepTimeoutFloorMs, stepTimeoutFactor * expected));
  }
}

/**
 * The rows slice `k` of `parts` takes from the next step's batch when the members stay the same: what
 * its worker reads ahead while it computes this step. Empty when the next batch is not known.
 */
export function nextSlice(next: Int32Array | null | undefined, k: number, parts: number): Int32Array {
  if (!next) return new Int32Array(0);
  const m = next.length;
  return next.subarray(Math.floor((k * m) / parts), Math.floor(((k + 1) * m) / parts));
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Awaits every task; on the first failure aborts `controller` (so the others stop early), waits for
 * all to settle, then throws that first failure.
 */
export async function settleAll<T>(tasks: Promise<T>[], controller: AbortController): Promise<T[]> {
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

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
