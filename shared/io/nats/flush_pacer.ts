/**
 * Back-pressure for publishers. `nc.publish` of nats.js only appends to an outbound buffer: a
 * publisher faster than the socket grows memory without bound. Awaiting `nc.flush()` (a PING/PONG
 * round trip) after every few megabytes bounds what is in flight.
 *
 * @module
 */
import type { NatsConnection, PublishOptions } from "npm:nats@2.29.3";

/** Options of {@link FlushPacer}. */
export interface FlushPacerOptions {
  /** Flush once this many payload bytes were published since the last flush. @default 16 MiB */
  everyBytes?: number;
}

/** Publishes through a connection and awaits a flush after every `everyBytes` bytes. */
export class FlushPacer {
  readonly everyBytes: number;
  #nc: NatsConnection;
  #unflushed = 0;

  constructor(nc: NatsConnection, options: FlushPacerOptions = {}) {
    const everyBytes = options.everyBytes ?? 16 * 1024 * 1024;
    if (!(everyBytes > 0)) {
      throw new RangeError(`Cannot pace publishes as everyBytes must be > 0: current value is ${everyBytes}`);
    }
    this.#nc = nc;
    this.everyBytes = everyBytes;
  }

  /** Bytes published since the last flush. */
  get unflushedBytes(): number {
    return this.#unflushed;
  }

  /** Publishes `data`, then flushes when the threshold is reached. */
  async publish(subject: string, data: Uint8Array, options?: Partial<PublishOptions>): Promise<void> {
    this.#nc.publish(subject, data, options);
    await this.sent(data.byteLength);
  }

  /** Counts `bytes` published elsewhere, then flushes when the threshold is reached. */
  async sent(bytes: number): Promise<void> {
    this.#unflushed += bytes;
    if (this.#unflushed >= this.everyBytes) await this.flush();
  }

  /** Flushes now. */
  async flush(): Promise<void> {
    this.#unflushed = 0;
    await this.#nc.flush();
  }
}
