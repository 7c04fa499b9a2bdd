import { formatExponential, formatFixed } from "./python_format.ts";

/** Options of {@link Progbar}. */
export interface ProgbarOptions {
  /** Total number of steps, or `null` when unknown. */
  target: number | null;
  /** 1: bar with metrics; 2: one line when finalized. */
  verbose: 1 | 2;
  /** Receives text to display, newlines included. */
  write: (text: string) => void;
  /**
   * Redraw the bar in place (`\b`/`\r`); when false, only the finalized line is written.
   * @default {true}
   */
  dynamic?: boolean;
  /**
   * Use Keras's ANSI colours and bold.
   * @default {same as `dynamic`}
   */
  color?: boolean;
  /**
   * Monotonic clock in milliseconds.
   * @default {performance.now}
   */
  now?: () => number;
  /**
   * Bar width in characters.
   * @default {20}
   */
  width?: number;
  /**
   * Minimum seconds between redraws.
   * @default {0.05}
   */
  interval?: number;
  /**
   * Unit shown in the time per unit, e.g. `6ms/step`.
   * @default {"step"}
   */
  unitName?: string;
}

const BOLD = "\x1b[1m";
const GREEN = "\x1b[32m";
const WHITE = "\x1b[37m";
const RESET = "\x1b[0m";
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Python `"%d" % x` for a non-negative float: truncation. */
const int = (x: number) => String(Math.trunc(x));
const pad2 = (x: number) => int(x).padStart(2, "0");

/**
 * A progress bar with Keras's exact output (`keras.utils.Progbar`): metric values are averaged over
 * the steps since the last update, and the finalized line shows the values passed to it as-is.
 */
export class Progbar {
  target: number | null;
  readonly #verbose: 1 | 2;
  readonly #write: (text: string) => void;
  readonly #dynamic: boolean;
  readonly #color: boolean;
  readonly #now: () => number;
  readonly #width: number;
  readonly #interval: number;
  readonly #unitName: string;
  readonly #values = new Map<string, [number, number]>();
  readonly #start: number;
  #seenSoFar = 0;
  #lastUpdate = 0;
  #timeAfterFirstStep: number | null = null;
  #prevTotalWidth = 0;

  constructor(options: ProgbarOptions) {
    this.target = options.target;
    this.#verbose = options.verbose;
    this.#write = options.write;
    this.#dynamic = options.dynamic ?? true;
    this.#color = options.color ?? this.#dynamic;
    this.#now = options.now ?? (() => performance.now());
    this.#width = options.width ?? 20;
    this.#interval = options.interval ?? 0.05;
    this.#unitName = options.unitName ?? "step";
    this.#start = this.#seconds();
  }

  #seconds(): number {
    return this.#now() / 1000;
  }

  #style(code: string, text: string): string {
    return this.#color ? code + text + RESET : text;
  }

  /**
   * Records step `current` (1-based) with this step's values and redraws.
   * @param finalize Whether this is the last update; defaults to `current >= target`.
   */
  update(current: number, values: Iterable<[string, number]> = [], finalize?: boolean): void {
    const final = finalize ?? (this.target !== null && current >= this.target);
    for (const [key, v] of values) {
      const entry = this.#values.get(key);
      if (final) {
        this.#values.set(key, [v, 1]);
      } else {
        const base = Math.max(current - this.#seenSoFar, 1);
        if (entry === undefined) this.#values.set(key, [v * base, base]);
        else {
          entry[0] += v * base;
          entry[1] += base;
        }
      }
    }
    this.#seenSoFar = current;
    const now = this.#seconds();
    const timePerUnit = this.#estimateStepDuration(current, now);
    if (this.#verbose === 1) {
      if (now - this.#lastUpdate < this.#interval && !final) return;
      if (this.#dynamic || final) this.#drawBar(current, now, timePerUnit, final);
    } else if (final) {
      this.#drawLine(current, now, timePerUnit);
    }
    this.#lastUpdate = now;
  }

  #drawBar(current: number, now: number, timePerUnit: number, final: boolean): void {
    let bar: string;
    if (this.target !== null) {
      const digits = Math.trunc(Math.log10(this.target)) + 1;
      bar = this.#style(BOLD, `${String(current).padStart(digits)}/${this.target}`) + " ";
      const progWidth = Math.trunc(this.#width * (current / this.target));
      if (progWidth > 0) bar += this.#style(GREEN, "━".repeat(progWidth));
      bar += this.#style(WHITE, "━".repeat(this.#width - progWidth));
    } else {
      bar = `${String(current).padStart(7)}/Unknown`;
    }
    let info: string;
    if (this.target !== null && !final) {
      const eta = timePerUnit * (this.target - current);
      let etaText: string;
      if (eta > 3600) {
        etaText = `${int(eta / 3600)}:${pad2((eta % 3600) / 60)}:${pad2(eta % 60)}`;
      } else if (eta > 60) etaText = `${int(eta / 60)}:${pad2(eta % 60)}`;
      else etaText = `${int(eta)}s`;
      info = " " + this.#style(BOLD, etaText);
    } else {
      info = " " + this.#style(BOLD, `${formatFixed(now - this.#start, 0)}s`);
    }
    info += this.#formatTime(timePerUnit);
    for (const [key, [sum, count]] of this.#values) {
      const avg = sum / Math.max(1, count);
      info += ` - ${key}: ${Math.abs(avg) > 1e-3 ? formatFixed(avg, 4) : formatExponential(avg, 4)}`;
    }
    const totalWidth = (bar + info).replace(ANSI, "").length;
    let message = this.#dynamic ? "\b".repeat(this.#prevTotalWidth) + "\r" : "";
    message += bar + info;
    if (this.#dynamic && this.#prevTotalWidth > totalWidth) {
      message += " ".repeat(this.#prevTotalWidth - totalWidth);
    }
    if (final) message += "\n";
    this.#write(message);
    this.#prevTotalWidth = totalWidth;
  }

  #drawLine(current: number, now: number, timePerUnit: number): void {
    const target = this.target ?? current;
    const digits = Math.trunc(Math.log10(target)) + 1;
    let info = `${String(current).padStart(digits)}/${target} - ${formatFixed(now - this.#start, 0)}s`;
    info += ` -${this.#formatTime(timePerUnit)}`;
    for (const [key, [sum, count]] of this.#values) {
      const avg = sum / Math.max(1, count);
      // Keras compares the signed value here (not its absolute value, as at verbose 1).
      info += ` - ${key}: ${avg > 1e-3 ? formatFixed(avg, 4) : formatExponential(avg, 4)}`;
    }
    this.#write(info + "\n");
  }

  #formatTime(timePerUnit: number): string {
    if (timePerUnit >= 1 || timePerUnit === 0) return ` ${formatFixed(timePerUnit, 0)}s/${this.#unitName}`;
    if (timePerUnit >= 1e-3) return ` ${formatFixed(timePerUnit * 1000, 0)}ms/${this.#unitName}`;
    return ` ${formatFixed(timePerUnit * 1e6, 0)}us/${this.#unitName}`;
  }

  /** Seconds per step, ignoring the first (usually slower) step once there are more. */
  #estimateStepDuration(current: number, now: number): number {
    if (!current) return 0;
    const perUnit = this.#timeAfterFirstStep !== null && current > 1
      ? (now - this.#timeAfterFirstStep) / (current - 1)
      : (now - this.#start) / current;
    if (current === 1) this.#timeAfterFirstStep = now;
    return perUnit;
  }
}
