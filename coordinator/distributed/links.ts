/**
 * A live worker as the step runner sees it: a link that carries one request and its reply at a time
 * per call, over the data plane (direct_link.ts) or through NATS (nats_link.ts).
 *
 * @module
 */
import type { Body } from "../../shared/io/nats/mod.ts";
import type { WeightsHeader, WorkReply, WorkRequest } from "../../shared/io/protocol/mod.ts";
import type { LinkKind } from "./events.ts";

/** A worker's reply: the validated header and the body bytes. */
export interface Reply {
  header: WorkReply;
  body: Uint8Array;
  /** True when the body was read where the worker wrote it, in memory shared with the coordinator. */
  shared?: boolean;
  /**
   * True when the link found every value of the reply's float32 gradient finite as it arrived (a
   * worker's own word, `gradsFinite` in its header, is read where the reply is accepted).
   */
  gradsFinite?: boolean;
}

/** The worker is gone (its connection closed, nobody serves its subject); `message` says how. */
export class LinkLostError extends Error {
  override name = "LinkLostError";
}

/** The worker did not answer within the deadline. */
export class LinkTimeoutError extends Error {
  override name = "LinkTimeoutError";
}

/** The coordinator's own NATS connection dropped while the request waited: no one is to blame. */
export class ConnectionInterruptedError extends Error {
  override name = "ConnectionInterruptedError";
}

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply. */
  timeoutMs: number;
  /** Aborts the wait; the request rejects with the signal's reason. */
  signal: AbortSignal;
}

/** How the coordinator reaches one worker. */
export interface WorkerLink {
  readonly kind: LinkKind;
  /** Where the link goes (a data-plane address, or the worker's NATS subject). */
  readonly address: string;
  /**
   * Sends a request and resolves with the reply. Rejects with {@link LinkLostError},
   * {@link LinkTimeoutError}, {@link ConnectionInterruptedError}, or the signal's reason.
   */
  request(header: WorkRequest, body: Body | undefined, opts: RequestOptions): Promise<Reply>;
  /**
   * Sends weights over this link (direct links; NATS workers get them by fan-out). `slot`: the
   * weights are in that slot of the shared weights region, for a link that shares memory.
   */
  sendWeights?(header: WeightsHeader, body: Body, slot?: number): Promise<void>;
  /**
   * Fails the requests in flight with a {@link LinkLostError} and lets the worker go: dropped (it may
   * join again), or because the job `ended`.
   */
  close(reason: string, ended?: boolean): void;
}
