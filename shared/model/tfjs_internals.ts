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

/** A recorded op of the gradient tape, as tfjs-core's `Engine.addTapeNode` builds it. */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => unknown;
}

type GradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: unknown) => unknown;

/** The part of tfjs-core's `Engine` that {@link keepTapeClosuresYoung} replaces and calls. */
interface EngineInternals {
  state: { nextTapeNodeId: number; activeTape: TapeNode[] };
  makeTensor(values: tf.TypedArray | string[], shape: number[], dtype: tf.DataType): tf.Tensor;
  runKernelFunc(config: {
    forwardFunc: (backend: unknown, save: unknown) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<number, () => tf.Tensor>;
    inputs: Record<number, tf.Tensor>;
  }): tf.Tensor;
  addTapeNode(
    kernelName: string,
    inputs: Record<string, tf.Tensor>,
    outputs: tf.Tensor[],
    gradientsFunc: GradFunc | undefined,
    saved: tf.Tensor[],
    attrs: unknown,
  ): void;
  customGrad(f: CustomGradFunc): (...inputs: tf.Tensor[]) => tf.Tensor;
}

type CustomGradFunc = (...args: unknown[]) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
};

let youngClosures = false;

/**
 * Makes the closures tfjs-core creates for every recorded op die young. `Engine.addTapeNode` (the
 * gradient of each op) and `Engine.customGrad` (one per gradient it returns) assign a function literal
 * to a property (`tapeNode.gradient = function …`), and V8 allocates such literals straight in old
 * space. Dead after the step, each keeps its young context alive through every scavenge until the next
 * mark-compact: the step's outputs, saved tensors and tape, ~34 KB a step of the chapter MLP, all
 * copied and then promoted (scavenges of 4–9 ms every ~40 steps, an old space growing 15–20 MB per
 * 1000 steps). These are the same two methods with each closure bound to a local before it is stored,
 * which V8 allocates young. Idempotent.
 */
export function keepTapeClosuresYoung(): void {
  if (youngClosures) return;
  youngClosures = true;
  const engine = Object.getPrototypeOf(tf.engine()) as EngineInternals;
  engine.addTapeNode = function (
    this: EngineInternals,
    kernelName,
    inputs,
    outputs,
    gradientsFunc,
    saved,
    attrs,
  ) {
    const tapeNode: TapeNode = { id: this.state.nextTapeNodeId++, kernelName, inputs, outputs, saved };
    const registered = tf.getGradient(kernelName);
    const gradFunc = registered ? registered.gradFunc as unknown as GradFunc : gradientsFunc;
    if (gradFunc) {
      const gradient = (dys: (tf.Tensor | null)[]) => {
        // The outputs no gradient reached get zeros; ops with one output take a dy, others the array.
        const filled = dys.map((dy, i) => {
          if (dy) return dy;
          const output = outputs[i]!;
          return this.makeTensor(
            tf.util.makeZerosTypedArray(output.size, output.dtype),
            output.shape,
            output.dtype,
          );
        });
        return gradFunc(filled.length > 1 ? filled : filled[0]!, saved, attrs);
      };
      tapeNode.gradient = gradient;
    }
    this.state.activeTape.push(tapeNode);
  };
  engine.customGrad = function (this: EngineInternals, f) {
    tf.util.assert(typeof f === "function", () => "The f passed in customGrad(f) must be a function.");
    return (...inputs: tf.Tensor[]) => {
      tf.util.assert(
        inputs.every((t) => t instanceof tf.Tensor),
        () => "The args passed in customGrad(f)(x1, x2,...) must all be tensors",
      );
      let res!: ReturnType<CustomGradFunc>;
      const inputMap: Record<number, tf.Tensor> = {};
      inputs.forEach((input, i) => inputMap[i] = input);
      const forwardFunc = (_: unknown, save: unknown) => {
        res = f(...inputs, save);
        tf.util.assert(
          res.value instanceof tf.Tensor,
          () => "The function f passed in customGrad(f) must return an object where `obj.value` is a tensor",
        );
        tf.util.assert(
          typeof res.gradFunc === "function",
          () =>
            "The function f passed in customGrad(f) must return an object where `obj.gradFunc` is a function.",
        );
        return res.value;
      };
      const backwardsFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const gradRes = res.gradFunc(dy, saved);
        const grads = Array.isArray(gradRes) ? gradRes : [gradRes];
        tf.util.assert(
          grads.length === inputs.length,
          () =>
            "The function f passed in customGrad(f) must return an object where `obj.gradFunc` is a function " +
            "that returns the same number of tensors as inputs passed to f(...).",
        );
        tf.util.assert(
          grads.every((t) => t instanceof tf.Tensor),
          () =>
            "The function f passed in customGrad(f) must return an object where `obj.gradFunc` is a function " +
            "that returns a list of only tensors.",
        );
        const gradMap: Record<number, () => tf.Tensor> = {};
        grads.forEach((grad, i) => {
          const get = () => grad;
          gradMap[i] = get;
        });
        return gradMap;
      };
      return this.runKernelFunc({ forwardFunc, backwardsFunc, inputs: inputMap });
    };
  };
}
