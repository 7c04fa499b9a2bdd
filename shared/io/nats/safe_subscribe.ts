/**
 * Subscriptions whose handler errors cannot escape. In nats.js v2 an exception thrown from a
 * subscription callback kills the connection's reader without a word, and the process hangs; here
 * messages are read through the async iterator and each handler call is wrapped, so a failure is
 * reported and the next message is served.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "npm:nats@2.29.3";
import type { z } from "npm:zod@4.6.7";
import type { Decoded } from "./codec.ts";
import { Reassembler, type ReassemblerOptions } from "./chunking.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
  /**
   * Called with every error a handler throws (and every malformed message), with the message;
   * without one for an error of the subscription itself (e.g. a permission violation). Errors
   * thrown here are caught too. @default logs the subject and the reason with `console.error`
   */
  onError?: (error: unknown, msg: Msg | undefined) => void;
  /**
   * Payload sent to `msg.reply` when the handler fails, so a requester learns at once instead of
   * timing out. Nothing is sent when absent or when it returns `undefined`.
   */
  errorReply?: (error: unknown, msg: Msg) => Uint8Array | undefined;
  /** Unsubscribes when aborted. */
  signal?: AbortSignal;
}

/** A running {@link serve} loop. */
export interface Service extends AsyncDisposable {
  readonly subscription: Subscription;
  /** Settles when the loop ends (unsubscribe, drain, connection closed, or abort). */
  readonly done: Promise<void>;
  /** Unsubscribes and waits for the loop to end (the message in progress finishes first). */
  stop(): Promise<void>;
}

/**
 * Serves `subject`, calling `handler` for one message at a time in arrival order. Whatever the
 * handler throws or rejects with goes to `onError`; the subscription keeps running.
 */
export function serve(
  nc: NatsConnection,
  subject: string,
  handler: (msg: Msg) => unknown,
  options: ServeOptions = {},
): Service {
  const { signal } = options;
  const onError = options.onError ?? defaultOnError;
  const subscription = nc.subscribe(subject, options.queue === undefined ? {} : { queue: options.queue });
  const onAbort = () => subscription.unsubscribe();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) subscription.unsubscribe();
  const done = (async () => {
    try {
      for await (const msg of subscription) {
        try {
          await handler(msg);
        } catch (error) {
          report(onError, error, msg);
          replyWithError(options, error, msg, onError);
        }
      }
    } catch (error) {
      report(onError, error, undefined);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  })();
  const stop = async () => {
    subscription.unsubscribe();
    await done;
  };
  return { subscription, done, stop, [Symbol.asyncDispose]: stop };
}

/** Options of {@link serveMessages}. */
export interface ServeMessagesOptions extends ServeOptions {
  /** Limits of the reassembler for chunked messages. */
  reassembler?: ReassemblerOptions;
}

/**
 * Serves wire-format messages (see codec.ts) on `subject`: chunked ones are reassembled, headers
 * validated with `schema`, and `handler` gets the decoded message with the last `Msg` received for
 * it (whose `reply` is the requester's). Malformed messages go to `onError`.
 */
export function serveMessages<S extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  schema: S,
  handler: (message: Decoded<z.output<S>>, msg: Msg) => unknown,
  options: ServeMessagesOptions = {},
): Service {
  const reassembler = new Reassembler(options.reassembler);
  return serve(nc, subject, async (msg) => {
    const message = reassembler.push(msg.data, schema);
    if (message) await handler(message, msg);
  }, options);
}

function replyWithError(options: ServeOptions, error: unknown, msg: Msg, onError: ServeOptions["onError"]) {
  if (!msg.reply || !options.errorReply) return;
  try {
    const payload = options.errorReply(error, msg);
    if (payload) msg.respond(payload);
  } catch (replyError) {
    report(onError, replyError, msg);
  }
}

function report(onError: ServeOptions["onError"], error: unknown, msg: Msg | undefined): void {
  try {
    (onError ?? defaultOnError)(error, msg);
  } catch (secondary) {
    console.error("NATS handler error reporter failed:", secondary, "while reporting:", error);
  }
}

function defaultOnError(error: unknown, msg: Msg | undefined): void {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.error(`NATS handler for subject ${msg?.subject ?? "(subscription)"} failed: ${reason}`);
}
