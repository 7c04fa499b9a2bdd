/**
 * Keras 3 learning-rate schedules (`keras.optimizers.schedules`): functions of the optimizer's step
 * count, with Keras's formulas, argument names and configs. An optimizer given a schedule evaluates it
 * at `iterations` before each update, as Keras does.
 *
 * Adding a schedule means writing its class and adding it to {@link SCHEDULES}.
 *
 * @module
 */

type Config = Record<string, unknown>;

/** A learning rate that depends on the optimizer step (Keras `LearningRateSchedule`). */
export abstract class LearningRateSchedule {
  /** Keras class name (`CosineDecay`), as the optimizer config stores it. */
  abstract readonly className: string;
  /** Keras config `name`. */
  abstract readonly name: string;

  /** The learning rate at optimizer step `step` (0-based). */
  abstract at(step: number): number;

  /** Keras 3's `config` of this schedule (snake_case keys). */
  abstract config(): Config;

  /** The serialized schedule as Keras stores it inside an optimizer config. */
  toConfig(): Config {
    return {
      module: "keras.optimizers.schedules",
      class_name: this.className,
      config: this.config(),
      registered_name: null,
    };
  }
}

function positive(what: string, name: string, value: number): void {
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(`Cannot create ${what} as ${name} must be a finite number > 0: received ${value}`);
  }
}

/** `schedules.ExponentialDecay`: `lr = initial * rate^(step / decaySteps)` (floored when `staircase`). */
export class ExponentialDecay extends LearningRateSchedule {
  readonly className = "ExponentialDecay";
  readonly name: string;
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly decayRate: number;
  readonly staircase: boolean;

  constructor(
    opts: {
      initialLearningRate: number;
      decaySteps: number;
      decayRate: number;
      /** @default false */
      staircase?: boolean;
      /** @default "ExponentialDecay" */
      name?: string;
    },
  ) {
    super();
    this.initialLearningRate = opts.initialLearningRate;
    this.decaySteps = opts.decaySteps;
    this.decayRate = opts.decayRate;
    this.staircase = opts.staircase ?? false;
    this.name = opts.name ?? "ExponentialDecay";
    if (!(this.decaySteps > 0)) {
      throw new RangeError(
        `Cannot create ExponentialDecay as decaySteps must be > 0: received ${opts.decaySteps}`,
      );
    }
    if (!(this.initialLearningRate > 0)) {
      throw new RangeError(
        `Cannot create ExponentialDecay as initialLearningRate must be > 0: received ${opts.initialLearningRate}`,
      );
    }
  }

  static fromConfig(c: Config): ExponentialDecay {
    return new ExponentialDecay({
      initialLearningRate: Number(c.initial_learning_rate),
      decaySteps: Number(c.decay_steps),
      decayRate: Number(c.decay_rate),
      staircase: Boolean(c.staircase),
      ...(typeof c.name === "string" ? { name: c.name } : {}),
    });
  }

  at(step: number): number {
    let p = step / this.decaySteps;
    if (this.staircase) p = Math.floor(p);
    return this.initialLearningRate * Math.pow(this.decayRate, p);
  }

  config(): Config {
    return {
      initial_learning_rate: this.initialLearningRate,
      decay_steps: this.decaySteps,
      decay_rate: this.decayRate,
      staircase: this.staircase,
      name: this.name,
    };
  }
}

/**
 * `schedules.CosineDecay` (SGDR without restarts), with an optional linear warmup. Keras 3:
 *
 * - without `warmupTarget`: `step = min(step, decaySteps)`, then
 *   `lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * step / decaySteps)) + alpha)`;
 * - with `warmupTarget`: `step = min(step, decaySteps + warmupSteps)`; while `step < warmupSteps`,
 *   `lr = initial + (warmupTarget - initial) * step / warmupSteps`; after it, the cosine above from
 *   `warmupTarget` over `step - warmupSteps`.
 */
export class CosineDecay extends LearningRateSchedule {
  readonly className = "CosineDecay";
  readonly name: string;
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly alpha: number;
  readonly warmupTarget: number | null;
  readonly warmupSteps: number;

  constructor(
    opts: {
      initialLearningRate: number;
      decaySteps: number;
      /** Minimum learning rate, as a fraction of the rate decayed from. @default 0 */
      alpha?: number;
      /** @default "CosineDecay" */
      name?: string;
      /** The rate reached at the end of the warmup; null means no warmup. @default null */
      warmupTarget?: number | null;
      /** @default 0 */
      warmupSteps?: number;
    },
  ) {
    super();
    this.initialLearningRate = opts.initialLearningRate;
    this.decaySteps = opts.decaySteps;
    this.alpha = opts.alpha ?? 0;
    this.name = opts.name ?? "CosineDecay";
    this.warmupTarget = opts.warmupTarget ?? null;
    this.warmupSteps = opts.warmupSteps ?? 0;
    positive("CosineDecay", "decaySteps", this.decaySteps);
    if (!(this.initialLearningRate >= 0 && Number.isFinite(this.initialLearningRate))) {
      throw new RangeError(
        `Cannot create CosineDecay as initialLearningRate must be a finite number >= 0: received ${opts.initialLearningRate}`,
      );
    }
    if (!(this.warmupSteps >= 0 && Number.isFinite(this.warmupSteps))) {
      throw new RangeError(
        `Cannot create CosineDecay as warmupSteps must be a finite number >= 0: received ${opts.warmupSteps}`,
      );
    }
  }

  static fromConfig(c: Config): CosineDecay {
    return new CosineDecay({
      initialLearningRate: Number(c.initial_learning_rate),
      decaySteps: Number(c.decay_steps),
      alpha: Number(c.alpha ?? 0),
      warmupTarget: c.warmup_target === null || c.warmup_target === undefined
        ? null
        : Number(c.warmup_target),
      warmupSteps: Number(c.warmup_steps ?? 0),
      ...(typeof c.name === "string" ? { name: c.name } : {}),
    });
  }

  at(step: number): number {
    if (this.warmupTarget === null) {
      return this.#decay(Math.min(step, this.decaySteps), this.initialLearningRate);
    }
    const s = Math.min(step, this.decaySteps + this.warmupSteps);
    if (s < this.warmupSteps) {
      return (this.warmupTarget - this.initialLearningRate) * (s / this.warmupSteps) +
        this.initialLearningRate;
    }
    return this.#decay(s - this.warmupSteps, this.warmupTarget);
  }

  #decay(step: number, from: number): number {
    const cosine = 0.5 * (1 + Math.cos(Math.PI * (step / this.decaySteps)));
    return from * ((1 - this.alpha) * cosine + this.alpha);
  }

  config(): Config {
    return {
      initial_learning_rate: this.initialLearningRate,
      decay_steps: this.decaySteps,
      alpha: this.alpha,
      name: this.name,
      warmup_target: this.warmupTarget,
      warmup_steps: this.warmupSteps,
    };
  }
}

/**
 * `schedules.PiecewiseConstantDecay`: `values[0]` up to and including step `boundaries[0]`, `values[i]`
 * for `boundaries[i-1] < step <= boundaries[i]`, and the last value after the last boundary.
 */
export class PiecewiseConstantDecay extends LearningRateSchedule {
  readonly className = "PiecewiseConstantDecay";
  readonly name: string;
  readonly boundaries: readonly number[];
  readonly values: readonly number[];

  constructor(
    opts: {
      boundaries: readonly number[];
      values: readonly number[];
      /** @default "PiecewiseConstant" */
      name?: string;
    },
  ) {
    super();
    if (opts.values.length !== opts.boundaries.length + 1) {
      throw new RangeError(
        "Cannot create PiecewiseConstantDecay as the length of boundaries should be 1 less than the length " +
          `of values: received boundaries=[${opts.boundaries.join(", ")}], values=[${
            opts.values.join(", ")
          }]`,
      );
    }
    for (let i = 1; i < opts.boundaries.length; i++) {
      if (!(opts.boundaries[i]! > opts.boundaries[i - 1]!)) {
        throw new RangeError(
          `Cannot create PiecewiseConstantDecay as boundaries must increase: received [${
            opts.boundaries.join(", ")
          }]`,
        );
      }
    }
    this.boundaries = [...opts.boundaries];
    this.values = [...opts.values];
    this.name = opts.name ?? "PiecewiseConstant";
  }

  static fromConfig(c: Config): PiecewiseConstantDecay {
    return new PiecewiseConstantDecay({
      boundaries: (c.boundaries as unknown[]).map(Number),
      values: (c.values as unknown[]).map(Number),
      ...(typeof c.name === "string" ? { name: c.name } : {}),
    });
  }

  at(step: number): number {
    const i = this.boundaries.findIndex((b) => step <= b);
    return this.values[i === -1 ? this.values.length - 1 : i]!;
  }

  config(): Config {
    return { boundaries: [...this.boundaries], values: [...this.values], name: this.name };
  }
}

/** A schedule class as the registry knows it: rebuilt from its Keras config. */
interface ScheduleClass {
  fromConfig(config: Config): LearningRateSchedule;
}

/** Every schedule, by Keras class name: the one list to extend when adding a schedule. */
const SCHEDULES: ReadonlyMap<string, ScheduleClass> = new Map<string, ScheduleClass>([
  ["ExponentialDecay", ExponentialDecay],
  ["CosineDecay", CosineDecay],
  ["PiecewiseConstantDecay", PiecewiseConstantDecay],
]);

/** Rebuilds a schedule from its Keras 3 `{ class_name, config }`; unknown classes list the known ones. */
export function scheduleFromConfig(entry: { class_name?: unknown; config?: unknown }): LearningRateSchedule {
  const cls = typeof entry.class_name === "string" ? SCHEDULES.get(entry.class_name) : undefined;
  if (!cls || typeof entry.config !== "object" || entry.config === null) {
    throw new TypeError(
      `Unsupported learning rate schedule: '${String(entry.class_name)}'. Use one of: ${
        [...SCHEDULES.keys()].join(", ")
      }`,
    );
  }
  return cls.fromConfig(entry.config as Config);
}
