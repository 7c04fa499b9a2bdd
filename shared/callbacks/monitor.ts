import { Callback, type Logs } from "./callback.ts";
import { defaultWarn, type WarnFn } from "./output.ts";

/** How a monitored quantity should move: `"min"` (lower is better), `"max"`, or `"auto"` (from the name). */
export type MonitorMode = "auto" | "min" | "max";

/** Options shared by callbacks that watch one logged quantity. */
export interface MonitorOptions {
  /**
   * Log key to watch, e.g. `"val_loss"`, `"accuracy"`.
   * @default {"val_loss"}
   */
  monitor?: string;
  /**
   * `"min"`, `"max"`, or `"auto"` to infer the direction from the name of the monitored quantity.
   * @default {"auto"}
   */
  mode?: MonitorMode;
  /**
   * Minimum change that counts as an improvement; its sign is ignored.
   * @default {0}
   */
  minDelta?: number;
  /**
   * Receives warnings, such as a monitored metric missing from the logs.
   * @default {console.warn}
   */
  warn?: WarnFn;
}

/** Metric names (after any `val_` prefix) whose Keras 3 metric objects have `_direction = "up"`. */
const UP = [
  "acc",
  "auc",
  "precision",
  "recall",
  "f1_score",
  "fbeta_score",
  "iou",
  "cosine_similarity",
  "r2_score",
  "true_positives",
  "true_negatives",
  "specificity",
  "sensitivity",
];

/** Metric names whose Keras 3 metric objects have `_direction = "down"`. */
const DOWN = [
  "error",
  "crossentropy",
  "hinge",
  "divergence",
  "poisson",
  "logcosh",
  "false_positives",
  "false_negatives",
  "mse",
  "mae",
  "mape",
  "msle",
];

/**
 * The direction Keras 3 infers in `"auto"` mode for a monitored name: `"min"` for losses, `"max"` for
 * metrics that go up (accuracy, AUC, precision, recall, …), `"min"` for errors and crossentropies, and
 * `undefined` when the name says nothing (Keras then refuses `"auto"`).
 */
export function inferDirection(monitor: string): "min" | "max" | undefined {
  const name = monitor.startsWith("val_") ? monitor.slice(4) : monitor;
  if (name === "loss" || name.endsWith("_loss")) return "min";
  if (name.includes("false_positives") || name.includes("false_negatives")) return "min";
  if (UP.some((word) => name.includes(word))) return "max";
  if (DOWN.some((word) => name.includes(word))) return "min";
  return undefined;
}

/** Checks a numeric option once, in the constructor, with the value and the fix in the message. */
export function checkNumber(
  owner: string,
  name: string,
  value: number,
  rule: { min?: number; integer?: boolean },
): number {
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (rule.min === undefined || value >= rule.min) && (!rule.integer || Number.isInteger(value));
  if (!ok) {
    const kind = rule.integer ? "an integer" : "a finite number";
    const range = rule.min === undefined ? "" : ` >= ${rule.min}`;
    throw new RangeError(`${owner} does not support ${name}=${String(value)}. Use ${kind}${range}`);
  }
  return value;
}

/**
 * Base of callbacks that watch one logged quantity (Keras `MonitorCallback`): it resolves the mode,
 * signs `minDelta`, decides what counts as an improvement and warns when the quantity is missing.
 */
export abstract class MonitorCallback extends Callback {
  /** The log key watched. */
  readonly monitor: string;
  /** The mode as given. */
  readonly mode: MonitorMode;
  /** The resolved direction: `"min"` when lower is better. */
  readonly direction: "min" | "max";
  /** `minDelta` signed as Keras does: negative in `"min"` direction. */
  readonly minDelta: number;
  /** Where warnings go. */
  protected readonly warn: WarnFn;

  /**
   * @param owner Class name used in messages.
   * @param inferAuto Direction rule for `"auto"` mode.
   */
  constructor(
    owner: string,
    options: MonitorOptions,
    inferAuto: (monitor: string) => "min" | "max" | undefined = inferDirection,
  ) {
    super();
    this.monitor = options.monitor ?? "val_loss";
    this.mode = options.mode ?? "auto";
    this.warn = options.warn ?? defaultWarn;
    if (typeof this.monitor !== "string" || this.monitor === "") {
      throw new TypeError(
        `${owner} does not support monitor=${String(this.monitor)}. Use a log key such as "val_loss"`,
      );
    }
    if (!["auto", "min", "max"].includes(this.mode)) {
      throw new RangeError(`${owner} mode '${this.mode}' is unknown. Use one of "auto", "min", "max"`);
    }
    const direction = this.mode === "auto" ? inferAuto(this.monitor) : this.mode;
    if (direction === undefined) {
      throw new RangeError(
        `${owner} callback received monitor=${this.monitor}, but cannot determine automatically whether ` +
          `that metric should be maximized or minimized. Pass mode: "max" in order to monitor based on ` +
          `the highest metric value, or mode: "min" in order to use the lowest value`,
      );
    }
    this.direction = direction;
    const minDelta = Math.abs(checkNumber(owner, "minDelta", options.minDelta ?? 0, {}));
    this.minDelta = direction === "min" ? -minDelta : minDelta;
  }

  /**
   * Whether `current` improves on `reference` by more than `minDelta` (Keras `_is_improvement`); any
   * value improves on `null`.
   */
  isImprovement(current: number, reference: number | null): boolean {
    if (reference === null) return true;
    const shifted = current - this.minDelta;
    return this.direction === "min" ? shifted < reference : shifted > reference;
  }

  /** The warning text for a missing monitored quantity, given the available keys joined by ",". */
  protected abstract missingMonitorMessage(available: string): string;

  /** The monitored value in `logs`, or `undefined` after warning with the available keys. */
  protected getMonitorValue(logs: Logs | undefined): number | undefined {
    const value = logs?.[this.monitor];
    if (value === undefined) this.warn(this.missingMonitorMessage(Object.keys(logs ?? {}).join(",")));
    return value;
  }
}
