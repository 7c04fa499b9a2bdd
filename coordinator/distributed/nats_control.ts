/**
 * The coordinator's NATS connection as the pool's parts share it: the job's subjects, and whether
 * the connection is up (with a counter that moves on every drop and return, so a request can tell
 * that the connection was interrupted while it waited).
 *
 * @module
 */
import { Events, type NatsConnection } from "npm:nats@2.29.3";
import { jobSubjects } from "../../shared/io/protocol/mod.ts";
import type { PoolEvents } from "./events.ts";

/**
 * Milliseconds after a reconnect during which a request that failed is blamed on the connection,
 * not on the worker: workers reconnect too, at their own pace.
 */
export const RECONNECT_GRACE_MS = 5000;

/** The connection, its state, and the job's subjects. */
export class NatsControl {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly subjects: ReturnType<typeof jobSubjects>;
  /** Moves on every disconnect and reconnect. */
  epoch = 0;
  connected = true;
  reconnectedAt = -Infinity;

  constructor(nc: NatsConnection, job: string, events: PoolEvents) {
    this.nc = nc;
    this.job = job;
    this.subjects = jobSubjects(job);
    void this.#watch(events).catch((error) =>
      events.emit({ type: "warning", message: `connection status: ${error}` })
    );
  }

  async #watch(events: PoolEvents): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === Events.Disconnect) {
        this.connected = false;
        this.epoch++;
        events.emit({ type: "disconnected", server: String(s.data) });
      } else if (s.type === Events.Reconnect) {
        this.connected = true;
        this.epoch++;
        this.reconnectedAt = performance.now();
        events.emit({ type: "reconnected", server: String(s.data) });
      }
    }
  }

  /** True when the connection dropped since `epoch`, is down, or came back moments ago. */
  interruptedSince(epoch: number): boolean {
    return epoch !== this.epoch || !this.connected ||
      performance.now() - this.reconnectedAt < RECONNECT_GRACE_MS;
  }
}
