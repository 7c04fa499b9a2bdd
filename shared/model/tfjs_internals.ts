/**
 * The parts of tfjs-core that are not its public API, in one place: its engine's gradient-tape state.
 * The shapes named here are those of the pinned release, {@link TFJS_CORE_VERSION};
 * tfjs_internals_test.ts checks the installed version and these shapes, so an upgrade fails there,
 * loudly, and nowhere else.
 *
 * @module
 */
import { tf } from "./tf.ts";

/** The tfjs-core release whose internals this module names (every import pins it). */
export const TFJS_CORE_VERSION = "4.22.0";

/** The part of tfjs-core's `EngineState` a gradient pass leaves behind. */
interface TapeState {
  /**
   * The recorded nodes of the pass in progress, each with the tensors saved for its gradient; unset
   * before the first pass.
   */
  activeTape?: { saved?: tf.Tensor[] }[] | null;
  /** How many gradient passes are running (nested `tf.grad` calls). */
  gradientDepth: number;
}

/** The engine's tape state, or null when the installed tfjs-core keeps it elsewhere. */
export function tapeState(): TapeState | null {
  const state = (tf.engine() as unknown as { state?: Partial<TapeState> }).state;
  if (!state || typeof state.gradientDepth !== "number") return null;
  const tape = state.activeTape;
  if (tape !== undefined && tape !== null && !Array.isArray(tape)) return null;
  return state as TapeState;
}

/**
 * Frees what a gradient pass stopped half-way left on the tape. TF.js frees the tensors its tape saved
 * for the backward pass when the pass completes; one stopped by an exception (a slice exchange aborted
 * because another slice's worker was lost) leaves them there. Does nothing while a pass still runs.
 */
export function disposeAbandonedTape(): void {
  const state = tapeState();
  if (!state?.activeTape || state.gradientDepth !== 0) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}
