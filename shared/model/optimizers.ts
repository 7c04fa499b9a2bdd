/**
 * Keras optimizers applied on flat Float32Arrays (the coordinator's parameter array), with Keras 3's
 * formulas and defaults. Workers never apply an optimizer: they only compute gradients.
 */
import { KernelArena } from "./simd/arena.ts";

/** `optimizers.schedules.ExponentialDecay`: `lr = initial * rate^(step / decaySteps)`. */
export class ExponentialDecay {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly decayRate: number;
  readonly staircase: boolean;

  constructor(
    opts: { initialLearningRate: number; decaySteps: number; decayRate: number; staircase?: boolean },
  ) {
    this.initialLearningRate = opts.initialLearningRate;
    this.decaySteps = opts.decaySteps;
    this.decayRate = opts.decayRate;
    this.staircase = opts.staircase ?? false;
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

  /** The learning rate at optimizer step `step` (0-based). */
  at(step: number): number {
    let p = step / this.decaySteps;
    if (this.staircase) p = Math.floor(p);
    return this.initialLearningRate * Math.pow(this.decayRate, p);
  }

  toConfig(): Record<string, unknown> {
    return {
      module: "keras.optimizers.schedules",
      class_name: "ExponentialDecay",
      config: {
        initial_learning_rate: this.initialLearningRate,
        decay_steps: this.decaySteps,
        decay_rate: this.decayRate,
        staircase: this.staircase,
        name: "ExponentialDecay",
      },
      registered_name: null,
    };
  }
}

export type LearningRate = number | ExponentialDecay;

/** Base optimizer: a learning rate (constant or scheduled), a step counter and per-parameter slots. */
export abstract class Optimizer {
  abstract readonly name: string;
  /** Number of updates applied (Keras `optimizer.iterations`). */
  iterations = 0;
  /** Per-parameter state arrays (Adam: momentum then velocity), created on first use. */
  slots: Float32Array[] = [];
  #lr: LearningRate;

  constructor(learningRate: LearningRate) {
    if (typeof learningRate === "number" && !(learningRate >= 0 && Number.isFinite(learningRate))) {
      throw new RangeError(
        `Cannot create an optimizer as learningRate must be a finite number >= 0: received ${learningRate}`,
      );
    }
    this.#lr = learningRate;
  }

  /** The current learning rate (a schedule is evaluated at `iterations`). */
  get learningRate(): number {
    return typeof this.#lr === "number" ? this.#lr : this.#lr.at(this.iterations);
  }

  /** Sets a constant learning rate (Keras `optimizer.learning_rate = x`). */
  set learningRate(value: number) {
    if (typeof this.#lr !== "number") {
      throw new TypeError(
        "Cannot set the learning rate of an optimizer that uses a LearningRateSchedule: " +
          "create the optimizer with a number to change it during training",
      );
    }
    if (!(value >= 0 && Number.isFinite(value))) {
      throw new RangeError(
        `Cannot set the learning rate as it must be a finite number >= 0: received ${value}`,
      );
    }
    this.#lr = value;
  }

  /** The schedule, when one is used. */
  get schedule(): ExponentialDecay | null {
    return typeof this.#lr === "number" ? null : this.#lr;
  }

  /** Number of slot arrays per parameter. */
  protected abstract get slotCount(): number;

  /** Applies one update to `params` in place and advances `iterations`. */
  apply(params: Float32Array, grads: Float32Array): void {
    if (grads.length !== params.length) {
      throw new RangeError(
        `Cannot apply gradients as their length ${grads.length} differs from the parameter count ${params.length}`,
      );
    }
    if (this.slots.length === 0) {
      this.slots = Array.from({ length: this.slotCount }, () => new Float32Array(params.length));
    }
    this.update(params, grads, this.learningRate);
    this.iterations++;
  }

  protected abstract update(params: Float32Array, grads: Float32Array, lr: number): void;

  /** Keras 3 optimizer config. */
  abstract toConfig(): Record<string, unknown>;

  protected baseConfig(): Record<string, unknown> {
    return {
      name: this.name,
      learning_rate: typeof this.#lr === "number" ? this.#lr : this.#lr.toConfig(),
      weight_decay: null,
      clipnorm: null,
      global_clipnorm: null,
      clipvalue: null,
      use_ema: false,
      ema_momentum: 0.99,
      ema_overwrite_frequency: null,
      loss_scale_factor: null,
      gradient_accumulation_steps: null,
    };
  }
}

/** `optimizers.Adam` (Keras defaults: learningRate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7). */
export class Adam extends Optimizer {
  readonly name = "adam";
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  #arena:
    | { arena: KernelArena; w: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array }
    | undefined;

  constructor(opts: { learningRate?: LearningRate; beta1?: number; beta2?: number; epsilon?: number } = {}) {
    super(opts.learningRate ?? 0.001);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-7;
  }

  protected get slotCount(): number {
    return 2;
  }

  /**
   * Runs the update in f32 SIMD, as Keras computes it. The moments live in the kernel's arena (a slot
   * set from outside, e.g. by loading a checkpoint, moves there on the next step); `w` and `g` are
   * copied in and `w` out, which costs less than a tenth of a scalar loop.
   */
  protected update(w: Float32Array, g: Float32Array, lr: number): void {
    const k = this.#kernel(w.length);
    const t = this.iterations + 1;
    k.w.set(w);
    k.g.set(g);
    k.arena.adam(k.w, k.g, this.slots[0]!, this.slots[1]!, {
      alpha: lr * Math.sqrt(1 - Math.pow(this.beta2, t)) / (1 - Math.pow(this.beta1, t)),
      b1: 1 - this.beta1,
      b2: 1 - this.beta2,
      epsilon: this.epsilon,
    });
    w.set(k.w);
  }

  #kernel(length: number): { arena: KernelArena; w: Float32Array; g: Float32Array } {
    if (this.#arena?.w.length !== length) {
      const arena = new KernelArena(length, 4);
      this.#arena = {
        arena,
        w: arena.alloc(length),
        g: arena.alloc(length),
        m: arena.alloc(length),
        v: arena.alloc(length),
      };
    }
    const a = this.#arena;
    if (this.slots[0] !== a.m || this.slots[1] !== a.v) {
      a.m.set(this.slots[0]!);
      a.v.set(this.slots[1]!);
      this.slots = [a.m, a.v];
    }
    return a;
  }

  toConfig(): Record<string, unknown> {
    return {
      ...this.baseConfig(),
      beta_1: this.beta1,
      beta_2: this.beta2,
      epsilon: this.epsilon,
      amsgrad: false,
    };
  }
}

/** `optimizers.SGD` (Keras defaults: learningRate 0.01, momentum 0, nesterov false). */
export class SGD extends Optimizer {
  readonly name = "SGD";
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(opts: { learningRate?: LearningRate; momentum?: number; nesterov?: boolean } = {}) {
    super(opts.learningRate ?? 0.01);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`Cannot create SGD as momentum must be in [0, 1]: received ${opts.momentum}`);
    }
  }

  protected get slotCount(): number {
    return this.momentum > 0 ? 1 : 0;
  }

  protected update(w: Float32Array, g: Float32Array, lr: number): void {
    if (this.momentum === 0) {
      for (let i = 0; i < w.length; i++) w[i] = w[i]! - lr * g[i]!;
      return;
    }
    const m = this.slots[0]!;
    const mu = this.momentum;
    for (let i = 0; i < w.length; i++) {
      const mi = mu * m[i]! - lr * g[i]!;
      m[i] = mi;
      w[i] = w[i]! + (this.nesterov ? mu * mi - lr * g[i]! : mi);
    }
  }

  toConfig(): Record<string, unknown> {
    return { ...this.baseConfig(), momentum: this.momentum, nesterov: this.nesterov };
  }
}

/** `optimizers.RMSprop` (Keras defaults: learningRate 0.001, rho 0.9, momentum 0, epsilon 1e-7). */
export class RMSprop extends Optimizer {
  readonly name = "rmsprop";
  readonly rho: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly centered: boolean;

  constructor(
    opts: {
      learningRate?: LearningRate;
      rho?: number;
      momentum?: number;
      epsilon?: number;
      centered?: boolean;
    } = {},
  ) {
    super(opts.learningRate ?? 0.001);
    this.rho = opts.rho ?? 0.9;
    this.momentum = opts.momentum ?? 0;
    this.epsilon = opts.epsilon ?? 1e-7;
    this.centered = opts.centered ?? false;
  }

  protected get slotCount(): number {
    return 1 + (this.momentum > 0 ? 1 : 0) + (this.centered ? 1 : 0);
  }

  protected update(w: Float32Array, g: Float32Array, lr: number): void {
    const velocity = this.slots[0]!;
    let k = 1;
    const momentum = this.momentum > 0 ? this.slots[k++]! : null;
    const average = this.centered ? this.slots[k++]! : null;
    const rho = this.rho, eps = this.epsilon;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      const vi = rho * velocity[i]! + (1 - rho) * gi * gi;
      velocity[i] = vi;
      let denom = vi;
      if (average) {
        const ai = rho * average[i]! + (1 - rho) * gi;
        average[i] = ai;
        denom = vi - ai * ai;
      }
      const increment = lr * gi / Math.sqrt(denom + eps);
      if (momentum) {
        const mi = this.momentum * momentum[i]! + increment;
        momentum[i] = mi;
        w[i] = w[i]! - mi;
      } else {
        w[i] = w[i]! - increment;
      }
    }
  }

  toConfig(): Record<string, unknown> {
    return {
      ...this.baseConfig(),
      rho: this.rho,
      momentum: this.momentum,
      epsilon: this.epsilon,
      centered: this.centered,
    };
  }
}

const BY_NAME = { adam: () => new Adam(), sgd: () => new SGD(), rmsprop: () => new RMSprop() };

/** Resolves `"adam" | "sgd" | "rmsprop"` or an instance; unknown names list the valid ones. */
export function getOptimizer(spec: string | Optimizer): Optimizer {
  if (spec instanceof Optimizer) return spec;
  const make = BY_NAME[spec.toLowerCase() as keyof typeof BY_NAME];
  if (!make) {
    throw new TypeError(`Unknown optimizer: '${spec}'. Use one of: ${Object.keys(BY_NAME).join(", ")}`);
  }
  return make();
}

/** Rebuilds an optimizer from its Keras 3 `{ class_name, config }`. */
export function optimizerFromConfig(
  entry: { class_name: string; config: Record<string, unknown> },
): Optimizer {
  const c = entry.config;
  const lrValue = c.learning_rate as number | {
    class_name: string;
    config: Record<string, number | boolean>;
  };
  let learningRate: LearningRate;
  if (typeof lrValue === "number") learningRate = lrValue;
  else if (lrValue?.class_name === "ExponentialDecay") {
    const s = lrValue.config;
    learningRate = new ExponentialDecay({
      initialLearningRate: Number(s.initial_learning_rate),
      decaySteps: Number(s.decay_steps),
      decayRate: Number(s.decay_rate),
      staircase: Boolean(s.staircase),
    });
  } else {throw new TypeError(
      `Unsupported learning rate schedule: '${lrValue?.class_name}'. Use ExponentialDecay`,
    );}
  switch (entry.class_name) {
    case "Adam":
      return new Adam({
        learningRate,
        beta1: c.beta_1 as number,
        beta2: c.beta_2 as number,
        epsilon: c.epsilon as number,
      });
    case "SGD":
      return new SGD({ learningRate, momentum: c.momentum as number, nesterov: c.nesterov as boolean });
    case "RMSprop":
      return new RMSprop({
        learningRate,
        rho: c.rho as number,
        momentum: c.momentum as number,
        epsilon: c.epsilon as number,
        centered: c.centered as boolean,
      });
    default:
      throw new TypeError(`Unknown optimizer class: '${entry.class_name}'. Use one of: Adam, SGD, RMSprop`);
  }
}
