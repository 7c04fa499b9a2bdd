/**
 * Who works for a job: the live members (in slice order), the joiners between their join request
 * and their admission at a step boundary, and the workers refused for good. It decides joins and
 * manifests and records drops; it sends nothing itself, so it can be driven by hand in tests.
 *
 * @module
 */
import type { JoinRequest, ReadyRequest } from "../../shared/io/protocol/mod.ts";
import { ModelMismatchError } from "../../shared/model/mod.ts";
import type { LayoutEntry } from "../../shared/model/mod.ts";
import type { PoolEvents } from "./events.ts";
import type { WorkerLink } from "./links.ts";

/** A live worker. */
export interface Member {
  name: string;
  backend: string;
  device: string;
  link: WorkerLink;
  /** Milliseconds of one forward pass over `rows` rows, measured by the worker at setup. */
  warmup: { ms: number; rows: number };
  /** Milliseconds of the worker's round trip to the coordinator, measured when it joined. */
  rttMs: number;
  /** Where the worker listens for its ring neighbour, when it does. */
  ringAddresses?: readonly string[];
}

/** A worker between its join request and its admission. */
export interface Joiner {
  /** Set once its manifest matched and its link is known. */
  member: Member | undefined;
  /** Datasets it holds. */
  shipped: Set<string>;
  /** `performance.now()` of its join: a joiner that never reports its model is forgotten. */
  since: number;
  /** True once every dataset reached it: admitted at the next step boundary. */
  prepared: boolean;
}

/** Options of {@link Roster}. */
export interface RosterOptions {
  job: string;
  /** Workers admitted at most. */
  maxWorkers: number;
  /** The coordinator's weight layouts, to check each worker's manifest against. */
  layouts: { params: readonly LayoutEntry[]; state: readonly LayoutEntry[] };
  events: PoolEvents;
}

/** Membership of one job; see the module doc. */
export class Roster {
  readonly job: string;
  readonly maxWorkers: number;
  /** Live members, in slice order (names in natural order). */
  live: Member[] = [];
  readonly joiners = new Map<string, Joiner>();
  /** Workers whose model or setup failed, with why: their joins are refused. */
  readonly refused = new Map<string, string>();
  /** Every worker ever admitted. */
  readonly known = new Set<string>();
  readonly #layouts: RosterOptions["layouts"];
  readonly #events: PoolEvents;

  constructor(opts: RosterOptions) {
    this.job = opts.job;
    this.maxWorkers = opts.maxWorkers;
    this.#layouts = opts.layouts;
    this.#events = opts.events;
  }

  /** Live and joining workers: what the heartbeat lists. */
  members(): string[] {
    return [...this.live.map((w) => w.name), ...this.joiners.keys()];
  }

  /** True when the job takes more workers. */
  wantsMore(): boolean {
    return this.live.length + this.joiners.size < this.maxWorkers;
  }

  /** Why a join request is refused (`closed`: the job is over), or `undefined` after recording the joiner. */
  join(header: JoinRequest, closed: boolean, now = performance.now()): string | undefined {
    const name = header.worker;
    if (header.job !== this.job) return `it asked for job ${header.job}`;
    if (closed) return `job ${this.job} is over`;
    if (this.live.some((w) => w.name === name) || this.joiners.has(name)) {
      return `the name ${name} is taken: give each worker its own --name`;
    }
    const refused = this.refused.get(name);
    if (refused !== undefined) return refused;
    if (!this.wantsMore()) return `job ${this.job} has its ${this.maxWorkers} workers (maxWorkers)`;
    this.joiners.set(name, { member: undefined, shipped: new Set(), prepared: false, since: now });
    return undefined;
  }

  /** Why `worker` may not open a data-plane connection now, or `undefined`. */
  dataRefusal(worker: string): string | undefined {
    if (this.joiners.has(worker) || this.live.some((w) => w.name === worker)) return undefined;
    return `worker ${worker} has not joined job ${this.job} over NATS`;
  }

  /**
   * Checks a joiner's manifest. On success the joiner holds its member (with `link`) and is returned;
   * otherwise the worker is refused for good and the problem returned.
   */
  ready(header: ReadyRequest, link: WorkerLink | undefined, problem?: string): Joiner | Error {
    const joiner = this.joiners.get(header.worker);
    if (!joiner || joiner.member || header.job !== this.job) {
      return new Error(
        `Worker ${header.worker} reported a model without a join in progress for job ${this.job}`,
      );
    }
    const failure = header.error
      ? new Error(`Worker ${header.worker} could not set up job ${this.job}: ${header.error}`)
      : problem !== undefined
      ? new Error(`Cannot use worker ${header.worker} in job ${this.job}: ${problem}`)
      : this.#compareManifest(header);
    if (failure || !link) {
      const error = failure ?? new Error(`Worker ${header.worker} has no link`);
      this.joiners.delete(header.worker);
      this.refused.set(header.worker, error.message);
      this.#events.emit({ type: "refused", worker: header.worker, reason: error.message });
      return error;
    }
    joiner.member = {
      name: header.worker,
      backend: header.backend,
      device: header.device,
      link,
      warmup: { ms: header.warmupMs, rows: header.warmupRows },
      rttMs: header.rttMs,
      ...(header.ringAddresses ? { ringAddresses: header.ringAddresses } : {}),
    };
    return joiner;
  }

  /** Forgets joiners that never reported their model within `timeoutMs`. */
  forgetStale(timeoutMs: number, now = performance.now()): void {
    for (const [name, joiner] of this.joiners) {
      if (!joiner.member && now - joiner.since > timeoutMs) {
        this.joiners.delete(name);
        this.#events.emit({
          type: "warning",
          message: `worker ${name} joined but never reported its model; forgot it`,
        });
      }
    }
  }

  /** Forgets a joiner (lost while its datasets travelled); it may join again. */
  forget(name: string): void {
    const joiner = this.joiners.get(name);
    this.joiners.delete(name);
    joiner?.member?.link.close("it was lost while joining");
  }

  /**
   * Refuses a worker for good (it cannot serve the job, e.g. it cannot open the dataset's files): a
   * live member leaves the live set, a joiner is forgotten, and its joins are refused from now on.
   * One `refused` event says why (no `dropped` event: it was not lost).
   */
  refuse(member: Member, reason: string): void {
    this.refused.set(member.name, reason);
    this.#events.emit({ type: "refused", worker: member.name, reason });
    if (this.live.includes(member)) {
      this.live = this.live.filter((w) => w !== member);
      member.link.close(reason);
    } else if (this.joiners.get(member.name)?.member === member) {
      this.forget(member.name);
    }
  }

  /** Moves a prepared joiner into the live set (it takes slices from now on). */
  admit(name: string, step: number): void {
    const joiner = this.joiners.get(name);
    if (!joiner?.member || !joiner.prepared) return;
    this.joiners.delete(name);
    this.live.push(joiner.member);
    this.live.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
    const rejoined = this.known.has(name);
    this.known.add(name);
    this.#events.emit({
      type: "joined",
      worker: name,
      step,
      rejoined,
      link: joiner.member.link.kind,
      address: joiner.member.link.address,
      workers: this.live.length,
    });
  }

  /**
   * Drops a live member: its link closes (requests in flight fail), and it may join again.
   * `deadlineSeconds` is the step deadline it missed, when that is the reason.
   */
  drop(member: Member, reason: string, step: number, deadlineSeconds?: number): void {
    if (!this.live.includes(member)) return;
    this.live = this.live.filter((w) => w !== member);
    member.link.close(reason);
    this.#events.emit({
      type: "dropped",
      worker: member.name,
      step,
      reason,
      workers: this.live.length,
      ...(deadlineSeconds === undefined ? {} : { deadlineSeconds }),
    });
  }

  /** The first weight where a worker's manifest differs from the coordinator's model, as an error. */
  #compareManifest(m: ReadyRequest): ModelMismatchError | undefined {
    const sides = [["params", this.#layouts.params, m.params], [
      "state",
      this.#layouts.state,
      m.state,
    ]] as const;
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
}
