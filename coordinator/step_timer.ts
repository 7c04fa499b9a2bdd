/**
 * Times the phases of each training step and reports their medians (a median ignores the one slow
 * step a garbage collection or a page fault makes).
 *
 * @module
 */
import { median } from "../shared/stats.ts";

/** Durations of the phases of every step, in milliseconds, by phase name. */
export class StepTimer {
  readonly #phases: Map<string, number[]>;
  #last = 0;

  /** `phases`: the names reported even when no step ran (with 0). */
  constructor(phases: readonly string[] = []) {
    this.#phases = new Map(phases.map((phase) => [phase, []]));
  }

  /** Starts timing a step's first phase. */
  start(): void {
    this.#last = performance.now();
  }

  /** Ends the phase running since {@link start} or the previous lap, and starts the next one. */
  lap(phase: string): void {
    const now = performance.now();
    const list = this.#phases.get(phase) ?? [];
    list.push(now - this.#last);
    this.#phases.set(phase, list);
    this.#last = now;
  }

  /** Median duration of each phase in milliseconds; 0 for a phase never lapped. */
  medians(): Record<string, number> {
    return Object.fromEntries([...this.#phases].map(([phase, times]) => [phase, median(times)]));
  }
}
