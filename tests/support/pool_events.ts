/** A distributed pool's events, recorded with the time each came, for assertions in tests. */
import assert from "node:assert/strict";
import type { PoolEvent, PoolListener } from "../../coordinator/distributed/events.ts";

/** A pool event and when it came (`performance.now()`). */
export type Recorded = PoolEvent & { at: number };

/** The recorded events of one type. */
export type RecordedOf<T extends PoolEvent["type"]> = Extract<Recorded, { type: T }>;

/** Records the events of the pools it listens to; pass `listeners` as `distribute.listeners`. */
export class EventLog {
  readonly events: Recorded[] = [];
  readonly listeners: PoolListener[] = [(e) => void this.events.push({ ...e, at: performance.now() })];

  /** The events of `type` that satisfy `where`, in the order they came. */
  all<T extends PoolEvent["type"]>(
    type: T,
    where: (e: RecordedOf<T>) => boolean = () => true,
  ): RecordedOf<T>[] {
    return this.events.filter((e): e is RecordedOf<T> => e.type === type && where(e as RecordedOf<T>));
  }

  /** Whether an event of `type` satisfies `where`. */
  has<T extends PoolEvent["type"]>(type: T, where: (e: RecordedOf<T>) => boolean = () => true): boolean {
    return this.all(type, where).length > 0;
  }

  /** The first event of `type` that satisfies `where`; fails, listing every event, when none does. */
  find<T extends PoolEvent["type"]>(
    type: T,
    where: (e: RecordedOf<T>) => boolean = () => true,
    what = `a ${type} event`,
  ): RecordedOf<T> {
    const found = this.all(type, where)[0];
    assert.ok(found, `no ${what} among the pool's events:\n${this.toString()}`);
    return found;
  }

  /** One JSON line per event, for failure messages. */
  toString(): string {
    return this.events.map((e) => JSON.stringify(e)).join("\n");
  }
}
