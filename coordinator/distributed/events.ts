/**
 * What a distributed pool reports while it runs, as typed events: tests assert on them, and console
 * output is one listener ({@link consoleListener}).
 *
 * @module
 */

/** How a worker's bulk data travels. */
export type LinkKind = "direct" | "nats";

/** One thing that happened in a distributed pool. */
export type PoolEvent =
  /** A worker was admitted: it computes slices from the next step on. */
  | {
    type: "joined";
    worker: string;
    step: number;
    rejoined: boolean;
    link: LinkKind;
    address?: string;
    workers: number;
  }
  /** A worker's join or model was refused. */
  | { type: "refused"; worker: string; reason: string }
  /**
   * A live worker was lost; its slices go to the others. `deadlineSeconds` is the step deadline it
   * missed, when that is why it was dropped.
   */
  | {
    type: "dropped";
    worker: string;
    step: number;
    reason: string;
    workers: number;
    deadlineSeconds?: number;
  }
  /** A worker's reply was rejected; `recompute` says whether only its slice runs again. */
  | { type: "reply-rejected"; worker: string; what: string; reason: string; recompute: boolean }
  /** A whole attempt runs again (the connection dropped, no worker was left, or slices exchange parts). */
  | { type: "attempt-retried"; what: string; reason: string; attempt: number }
  /** Below `minWorkers`: the run waits at a step boundary. */
  | {
    type: "paused";
    step: number;
    workers: number;
    of: number;
    needed: number;
    waitSeconds: number;
    hint: string;
  }
  | { type: "resumed"; step: number; workers: number }
  /** The coordinator's NATS connection went down or came back. */
  | { type: "disconnected"; server: string }
  | { type: "reconnected"; server: string }
  /** A connection to the data plane was refused (no or a wrong job secret, not a member). */
  | { type: "data-refused"; peer: string; reason: string }
  /** A worker's data-plane connection ended. */
  | { type: "data-lost"; worker: string; reason: string }
  /** The reduction changed (the first step, or the workers changed): `ring` or `star`, and why. */
  | { type: "allreduce"; use: "star" | "ring"; step: number; workers: number; reason: string }
  /** Anything else worth a line (mixed backends, a failed heartbeat, a joiner given up). */
  | { type: "warning"; message: string };

/** Receives every event of a pool. */
export type PoolListener = (event: PoolEvent) => void;

/** The events of one pool, fanned out to its listeners; a listener that throws does not stop the others. */
export class PoolEvents {
  readonly #listeners: PoolListener[] = [];

  constructor(listeners: readonly PoolListener[] = []) {
    this.#listeners.push(...listeners);
  }

  on(listener: PoolListener): void {
    this.#listeners.push(listener);
  }

  emit(event: PoolEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error(`A pool event listener failed on ${event.type}: ${error}`);
      }
    }
  }
}

/**
 * The console listener: one line on stderr per event a user should see. Admissions at the start of a
 * run are quiet; later joins, drops, pauses and refusals are not.
 */
export function consoleListener(job: string): PoolListener {
  return (event) => {
    const line = describeEvent(job, event);
    if (line !== undefined) console.warn(line);
  };
}

/** The console line of an event, or `undefined` for events that are quiet by default. */
export function describeEvent(job: string, e: PoolEvent): string | undefined {
  switch (e.type) {
    case "joined":
      if (e.step < 0) return undefined;
      return `Worker ${e.worker} ${e.rejoined ? "rejoined" : "joined"} job ${job} at step ${e.step}; ` +
        `continuing with ${e.workers} workers`;
    case "refused":
      return `Job ${job}: refused worker ${e.worker}: ${e.reason}`;
    case "dropped":
      return `Lost worker ${e.worker} of job ${job} at step ${e.step} (${e.reason}); continuing with ${e.workers} workers`;
    case "reply-rejected":
      return `Rejected the reply of worker ${e.worker} for ${e.what} in job ${job}: ${e.reason}; ${
        e.recompute ? "recomputing it" : "running the step again"
      }`;
    case "attempt-retried":
      return `Job ${job}: ${e.what} interrupted (${e.reason}); running it again (try ${e.attempt})`;
    case "paused":
      return `Job ${job} paused at step ${e.step}: waiting for workers: ${e.workers} of ${e.of} live, need ${e.needed}; ` +
        `${e.hint} (waiting up to ${e.waitSeconds} s)`;
    case "resumed":
      return `Job ${job} resumes at step ${e.step} with ${e.workers} workers`;
    case "disconnected":
      return `Job ${job}: lost the connection to the NATS server ${e.server}; reconnecting`;
    case "reconnected":
      return `Job ${job}: reconnected to the NATS server ${e.server}`;
    case "data-refused":
      return `Job ${job}: refused a data-plane connection from ${e.peer}: ${e.reason}`;
    case "data-lost":
      return undefined;
    case "allreduce":
      return e.step < 0
        ? undefined
        : `Job ${job} reduces on the ${e.use} from step ${e.step} with ${e.workers} workers (${e.reason})`;
    case "warning":
      return `Job ${job}: ${e.message}`;
  }
}
