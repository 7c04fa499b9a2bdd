/**
 * A data-plane connection as both sides use it: frames in (one reader), frames out (one ordered
 * writer), and one settled end. Whatever ends it first (the peer closing, a broken socket, a bad
 * frame, a local `close`) is its end reason; every later send then rejects with that reason.
 *
 * @module
 */
import type { Body } from "../nats/codec.ts";
import { type BodyDestination, type Frame, FrameReader, FrameWriter } from "./frames.ts";

/** The connection ended; `message` says why. */
export class ChannelClosedError extends Error {
  override name = "ChannelClosedError";
}

/** Options of {@link FrameChannel}. */
export interface FrameChannelOptions {
  /** Largest frame body read. */
  maxBodyBytes: number;
  /** True when the stream runs over TLS. */
  encrypted: boolean;
  /** The peer, for messages (an address, or "unix socket"). */
  peer: string;
}

/** Frames over one socket. */
export class FrameChannel {
  readonly encrypted: boolean;
  readonly peer: string;
  readonly #conn: Deno.Conn;
  readonly #reader: FrameReader;
  readonly #writer: FrameWriter;
  readonly #ended = Promise.withResolvers<ChannelClosedError>();
  #reason: ChannelClosedError | undefined;

  constructor(conn: Deno.Conn, options: FrameChannelOptions) {
    this.#conn = conn;
    this.encrypted = options.encrypted;
    this.peer = options.peer;
    this.#reader = new FrameReader(conn, options.maxBodyBytes);
    this.#writer = new FrameWriter(conn);
  }

  /** Largest frame body read from now on (raised once the peer proved who it is). */
  set maxBodyBytes(bytes: number) {
    this.#reader.maxBodyBytes = bytes;
  }

  /** Bytes this end read and wrote on the connection so far, frames whole (for traffic measurements). */
  get traffic(): { read: number; written: number } {
    return { read: this.#reader.bytesRead, written: this.#writer.bytesWritten };
  }

  /** Settles with the reason once the channel ended. */
  get ended(): Promise<ChannelClosedError> {
    return this.#ended.promise;
  }

  /** True once the channel ended. */
  get isClosed(): boolean {
    return this.#reason !== undefined;
  }

  /**
   * The next frame, or `null` once the channel ended (see {@link ended} for why); `bodyInto` as in
   * {@link FrameReader.next}.
   */
  async next(bodyInto?: BodyDestination): Promise<Frame | null> {
    if (this.#reason) return null;
    try {
      const frame = await this.#reader.next(bodyInto);
      if (frame === null) this.close("the peer closed the connection");
      return frame;
    } catch (error) {
      this.close(reasonOf(error));
      return null;
    }
  }

  /** Sends one frame; rejects with a {@link ChannelClosedError} when the channel ended before it went out. */
  send(header: object, body?: Body): Promise<void> {
    return this.sendAll([{ header, body }]);
  }

  /** Sends frames together, small ones in one write (FrameWriter `sendAll`); rejects as {@link send}. */
  async sendAll(frames: readonly { header: object; body?: Body | undefined }[]): Promise<void> {
    if (this.#reason) throw this.#reason;
    try {
      await this.#writer.sendAll(frames);
    } catch (error) {
      this.close(`sending failed: ${reasonOf(error)}`);
      throw this.#reason!;
    }
  }

  /** Ends the channel (idempotent): the socket closes and the peer sees the end. */
  close(reason = "closed here"): void {
    if (this.#reason) return;
    this.#reason = new ChannelClosedError(`the data connection to ${this.peer} ended: ${reason}`);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#ended.resolve(this.#reason);
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
