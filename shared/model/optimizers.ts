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

type Config = Record<string, unknown>;

/** Where one trainable variable sits in the flat parameter array (a `LayoutEntry` fits). */
export interface VariableSlice {
  /** Keras path `dense/kernel`, for error messages. */
  readonly path: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

/** One optimizer variable as a Keras weights file stores it (`optimizer/vars/<i>`). */
export interface OptimizerVariable {
  readonly shape: readonly number[];
  readonly dtype: "int64" | "float32";
  readonly data: BigInt64Array | Float32Array;
}

/** A stored variable as read back from a file: any dtype, checked by the reader. */
export interface StoredVariable {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly data: ArrayLike<number | bigint>;
}

/**
 * Checks one stored slot variable against the trainable variable it belongs to and returns its values
 * as float32; throws when it does not fit. `index` is its position in the stored list.
 */
export type ReadSlot<V extends StoredVariable> = (
  stored: V,
  slice: VariableSlice,
  index: number,
) => Float32Array;

/**
 * Base optimizer: a learning rate (constant or scheduled), a step counter and per-parameter slots.
 *
 * A subclass is everything Shoal knows about one Keras optimizer: its Keras class name, its config
 * (`toConfig` / static `fromConfig`), its update, and its {@link slotPlan}, from which the base class
 * saves and loads its variables in Keras's order (Keras `save_own_variables` / `load_own_variables`).
 * Adding an optimizer means writing its class and adding it to {@link OPTIMIZERS}.
 */
export abstract class Optimizer {
  /** Keras class name (`Adam`), as `compile_config` stores it. */
  abstract readonly className: string;
  /** Keras config `name` (`adam`). */
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

  /**
   * How Keras creates this optimizer's slot variables: one `add_optimizer_variables` call per inner
   * list, each interleaving its slots per trainable variable (Adam `[[0, 1]]`: m0, v0, m1, v1, …;
   * RMSprop: all velocities, then all momentums, then all average gradients). Numbers index
   * {@link slots}; together they are 0 … slot count − 1.
   */
  abstract get slotPlan(): readonly (readonly number[])[];

  /** Number of slot arrays per parameter. */
  get slotCount(): number {
    return this.slotPlan.reduce((n, call) => n + call.length, 0);
  }

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
  abstract toConfig(): Config;

  protected baseConfig(): Config {
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

  /** Number of variables Keras stores for `trainableCount` trainable variables. */
  ownVariableCount(trainableCount: number): number {
    return (this.schedule ? 1 : 2) + this.slotCount * trainableCount;
  }

  /**
   * Keras's `optimizer/vars` (`save_own_variables`): iterations, the learning rate (not for a
   * schedule), then the slots in {@link slotPlan} order over `trainable` (Keras
   * `model.trainable_variables` order). Before the first update the slots are zeros, as Keras's freshly
   * built ones.
   */
  saveOwnVariables(trainable: readonly VariableSlice[], paramCount: number): OptimizerVariable[] {
    const slots = this.slots.length === this.slotCount
      ? this.slots
      : Array.from({ length: this.slotCount }, () => new Float32Array(paramCount));
    const vars: OptimizerVariable[] = [
      { shape: [], dtype: "int64", data: BigInt64Array.of(BigInt(this.iterations)) },
    ];
    if (!this.schedule) vars.push({ shape: [], dtype: "float32", data: Float32Array.of(this.learningRate) });
    for (const call of this.slotPlan) {
      for (const e of trainable) {
        for (const s of call) {
          vars.push({
            shape: [...e.shape],
            dtype: "float32",
            data: slots[s]!.slice(e.offset, e.offset + e.size),
          });
        }
      }
    }
    return vars;
  }

  /**
   * Reads variables written by {@link saveOwnVariables} (or by Keras) and returns the function that
   * restores them (Keras `load_own_variables`); nothing changes before it runs. `vars` must hold
   * {@link ownVariableCount} variables; `read` checks each slot variable and may throw.
   */
  loadOwnVariables<V extends StoredVariable>(
    vars: readonly V[],
    trainable: readonly VariableSlice[],
    paramCount: number,
    read: ReadSlot<V>,
  ): () => void {
    const expected = this.ownVariableCount(trainable.length);
    if (vars.length !== expected) {
      throw new RangeError(
        `Cannot load the state of optimizer "${this.name}" as it has ${expected} variables: received ${vars.length}`,
      );
    }
    const iterations = Number(vars[0]!.data[0]!);
    const storedRate = this.schedule ? null : Number(vars[1]!.data[0]!);
    const slots = Array.from({ length: this.slotCount }, () => new Float32Array(paramCount));
    let k = this.schedule ? 1 : 2;
    for (const call of this.slotPlan) {
      for (const e of trainable) {
        for (const s of call) {
          slots[s]!.set(read(vars[k]!, e, k), e.offset);
          k++;
        }
      }
    }
    return () => {
      this.iterations = iterations;
      this.slots = slots;
      // The config holds the rate as a float64; the stored float32 only matters when it was changed since.
      if (storedRate !== null && Math.fround(this.learningRate) !== storedRate) {
        this.learningRate = storedRate;
      }
    };
  }
}

/** A Keras `learning_rate` config value: a number or a serialized schedule. */
export function learningRateFromConfig(value: unknown): LearningRate {
  if (typeof value === "number") return value;
  const entry = value as { class_name?: string; config?: Record<string, number | boolean> } | null;
  if (entry?.class_name === "ExponentialDecay" && entry.config) {
    const s = entry.config;
    return new ExponentialDecay({
      initialLearningRate: Number(s.initial_learning_rate),
      decaySteps: Number(s.decay_steps),
      decayRate: Number(s.decay_rate),
      staircase: Boolean(s.staircase),
    });
  }
  throw new TypeError(`Unsupported learning rate schedule: '${entry?.class_name}'. Use ExponentialDecay`);
}

/** `optimizers.Adam` (Keras defaults: learningRate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7). */
export class Adam extends Optimizer {
  readonly className = "Adam";
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

  static fromConfig(c: Config): Adam {
    return new Adam({
      learningRate: learningRateFromConfig(c.learning_rate),
      beta1: c.beta_1 as number,
      beta2: c.beta_2 as number,
      epsilon: c.epsilon as number,
    });
  }

  /** Momentums and velocities, created together: m0, v0, m1, v1, … */
  get slotPlan(): readonly (readonly number[])[] {
    return [[0, 1]];
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

  toConfig(): Config {
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
  readonly className = "SGD";
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

  static fromConfig(c: Config): SGD {
    return new SGD({
      learningRate: learningRateFromConfig(c.learning_rate),
      momentum: c.momentum as number,
      nesterov: c.nesterov as boolean,
    });
  }

  /** The momentums, only when momentum is used. */
  get slotPlan(): readonly (readonly number[])[] {
    return this.momentum > 0 ? [[0]] : [];
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

  toConfig(): Config {
    return { ...this.baseConfig(), momentum: this.momentum, nesterov: this.nesterov };
  }
}

/** `optimizers.RMSprop` (Keras defaults: learningRate 0.001, rho 0.9, momentum 0, epsilon 1e-7). */
export class RMSprop extends Optimizer {
  readonly className = "RMSprop";
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

  static fromConfig(c: Config): RMSprop {
    return new RMSprop({
      learningRate: learningRateFromConfig(c.learning_rate),
      rho: c.rho as number,
      momentum: c.momentum as number,
      epsilon: c.epsilon as number,
      centered: c.centered as boolean,
    });
  }

  /** Velocities, then momentums (when used), then average gradients (when centered), each its own call. */
  get slotPlan(): readonly (readonly number[])[] {
    const plan = [[0]];
    if (this.momentum > 0) plan.push([plan.length]);
    if (this.centered) plan.push([plan.length]);
    return plan;
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

  toConfig(): Config {
    return {
      ...this.baseConfig(),
      rho: this.rho,
      momentum: this.momentum,
      epsilon: this.epsilon,
      centered: this.centered,
    };
  }
}

/** An optimizer class as the registry knows it: default-constructible and rebuilt from its config. */
interface OptimizerClass {
  new (): Optimizer;
  fromConfig(config: Config): Optimizer;
}

/** Every optimizer, by Keras class name: the one list to extend when adding an optimizer. */
const OPTIMIZERS: ReadonlyMap<string, OptimizerClass> = new Map<string, OptimizerClass>([
  ["Adam", Adam],
  ["SGD", SGD],
  ["RMSprop", RMSprop],
]);

/** Resolves a name (`"adam"`, case-insensitive) or an instance; unknown names list the valid ones. */
export function getOptimizer(spec: string | Optimizer): Optimizer {
  if (spec instanceof Optimizer) return spec;
  const key = [...OPTIMIZERS.keys()].find((k) => k.toLowerCase() === spec.toLowerCase());
  if (key === undefined) {
    const names = [...OPTIMIZERS.keys()].map((k) => k.toLowerCase()).join(", ");
    throw new TypeError(`Unknown optimizer: '${spec}'. Use one of: ${names}`);
  }
  return new (OPTIMIZERS.get(key)!)();
}

/** Rebuilds an optimizer from its Keras 3 `{ class_name, config }`. */
export function optimizerFromConfig(entry: { class_name: string; config: Config }): Optimizer {
  const cls = OPTIMIZERS.get(entry.class_name);
  if (!cls) {
    throw new TypeError(
      `Unknown optimizer class: '${entry.class_name}'. Use one of: ${[...OPTIMIZERS.keys()].join(", ")}`,
    );
  }
  return cls.fromConfig(entry.config);
}
