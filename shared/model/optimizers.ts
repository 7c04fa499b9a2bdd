/**
 * Keras optimizers applied on flat Float32Arrays (the coordinator's parameter array), with Keras 3's
 * formulas and defaults. Workers never apply an optimizer: they only compute gradients.
 */
import { type AdamStep, KernelArena } from "./simd/arena.ts";
import { type LearningRateSchedule, scheduleFromConfig } from "./schedules.ts";
import { denseSquares, type GradSquares, gradSquaresProblem, scatterSquares } from "./grad_squares.ts";

export type LearningRate = number | LearningRateSchedule;

/**
 * What every Keras optimizer takes (Keras's `base_optimizer_keyword_args`). At most one of
 * `clipnorm`, `clipvalue` and `globalClipnorm` may be set; Keras clips the gradients first, then
 * decays the weights, then runs the update.
 */
export interface OptimizerOptions {
  /** A number or a schedule; each optimizer documents its default. */
  learningRate?: LearningRate;
  /** Decoupled weight decay: before each update, `w -= w * weightDecay * lr`. @default null (none) */
  weightDecay?: number | null;
  /** Each variable's gradient is rescaled to at most this L2 norm. @default null */
  clipnorm?: number | null;
  /** Each gradient value is clipped to [-clipvalue, clipvalue]. @default null */
  clipvalue?: number | null;
  /** All gradients are rescaled together so that their global L2 norm is at most this. @default null */
  globalClipnorm?: number | null;
  /** Keras config `name`; each optimizer documents its default. */
  name?: string;
}

type Config = Record<string, unknown>;

/** Where one trainable variable sits in the flat parameter array (a `LayoutEntry` fits). */
export interface VariableSlice {
  /** Keras path `dense/kernel`, for error messages. */
  readonly path: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

/** The parameter and gradient arrays an optimizer updates where they are ({@link Optimizer.residentBuffers}). */
export interface ResidentBuffers {
  readonly params: Float32Array;
  readonly grads: Float32Array;
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
  readonly name: string;
  readonly weightDecay: number | null;
  readonly clipnorm: number | null;
  readonly clipvalue: number | null;
  readonly globalClipnorm: number | null;
  /** Number of updates applied (Keras `optimizer.iterations`). */
  iterations = 0;
  /** Per-parameter state arrays (Adam: momentum then velocity), created on first use. */
  slots: Float32Array[] = [];
  #lr: LearningRate;
  /** The clipped gradient, reused step after step (only when clipping). */
  #clipped: Float32Array | undefined;

  /** `defaults` are the subclass's Keras defaults for the options every optimizer has. */
  constructor(opts: OptimizerOptions, defaults: { learningRate: number; name: string }) {
    const learningRate = opts.learningRate ?? defaults.learningRate;
    if (typeof learningRate === "number" && !(learningRate >= 0 && Number.isFinite(learningRate))) {
      throw new RangeError(
        `Cannot create an optimizer as learningRate must be a finite number >= 0: received ${learningRate}`,
      );
    }
    this.#lr = learningRate;
    this.name = opts.name ?? defaults.name;
    this.weightDecay = opts.weightDecay ?? null;
    this.clipnorm = opts.clipnorm ?? null;
    this.clipvalue = opts.clipvalue ?? null;
    this.globalClipnorm = opts.globalClipnorm ?? null;
    const clips = { clipnorm: this.clipnorm, clipvalue: this.clipvalue, globalClipnorm: this.globalClipnorm };
    for (const [key, value] of Object.entries({ weightDecay: this.weightDecay, ...clips })) {
      if (value !== null && !(value >= 0 && Number.isFinite(value))) {
        throw new RangeError(
          `Cannot create an optimizer as ${key} must be a finite number >= 0 or null: received ${value}`,
        );
      }
    }
    if (Object.values(clips).filter((v) => v !== null).length > 1) {
      throw new RangeError(
        "Cannot create an optimizer as only one of clipnorm, clipvalue and globalClipnorm can be set: " +
          `received clipnorm=${this.clipnorm}, clipvalue=${this.clipvalue}, globalClipnorm=${this.globalClipnorm}`,
      );
    }
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
  get schedule(): LearningRateSchedule | null {
    return typeof this.#lr === "number" ? null : this.#lr;
  }

  /**
   * How Keras creates this optimizer's slot variables: one `add_optimizer_variables` call per inner
   * list, each interleaving its slots per trainable variable (Adam `[[0, 1]]`: m0, v0, m1, v1, …;
   * RMSprop: all velocities, then all momentums, then all average gradients). Numbers index
   * {@link slots}; together they are 0 … slot count − 1.
   */
  abstract get slotPlan(): readonly (readonly number[])[];

  /**
   * Arrays of `length` floats that {@link apply} reads in place, with no copy: where a trainer keeps
   * `owner`'s parameters and writes each step's gradient. Undefined when this optimizer has none, or
   * when another owner's parameters are already there (one optimizer shared by two models).
   */
  residentBuffers(_owner: object, _length: number): ResidentBuffers | undefined {
    return undefined;
  }

  /** Number of slot arrays per parameter. */
  get slotCount(): number {
    return this.slotPlan.reduce((n, call) => n + call.length, 0);
  }

  /**
   * Applies one update to `params` in place and advances `iterations`, as Keras's `apply`: clips the
   * gradients (`grads` itself is left as it is), decays the weights, then runs the update.
   * `variables` are where the trainable variables sit in `params` (clipnorm clips each on its own);
   * without them `params` is one variable. `squares` are the per-row sums of squared slices of the
   * variables whose gradient Keras's TensorFlow backend holds as IndexedSlices (Embedding): Keras
   * squares those slice by slice, in the gradient norms and in Adam's and RMSprop's velocities; a
   * row they do not list has none (its squares are zeros). With clipnorm or globalClipnorm, each must
   * start where one of `variables` starts and cover it whole (else it is left out).
   */
  apply(
    params: Float32Array,
    grads: Float32Array,
    variables?: readonly VariableSlice[],
    squares: readonly GradSquares[] = [],
  ): void {
    if (grads.length !== params.length) {
      throw new RangeError(
        `Cannot apply gradients as their length ${grads.length} differs from the parameter count ${params.length}`,
      );
    }
    for (const sq of squares) {
      if (!(Number.isInteger(sq.offset) && sq.offset >= 0 && sq.offset + sq.size <= params.length)) {
        throw new RangeError(
          `Cannot apply gradient squares at offset ${sq.offset} of size ${sq.size}: ` +
            `they must lie within the ${params.length} parameters`,
        );
      }
      const problem = gradSquaresProblem(sq);
      if (problem) {
        throw new RangeError(
          `Cannot apply gradient squares at offset ${sq.offset} as their ${problem}: ` +
            "pass the rows a slice looked up and their squares",
        );
      }
    }
    if (this.slots.length === 0) {
      this.slots = Array.from({ length: this.slotCount }, () => new Float32Array(params.length));
    }
    const lr = this.learningRate;
    const clipped = this.#clip(grads, variables, squares);
    if (this.weightDecay !== null) {
      const wd = this.weightDecay;
      for (let i = 0; i < params.length; i++) params[i] = params[i]! - params[i]! * wd * lr;
    }
    this.update(params, clipped.grads, lr, clipped.squares);
    this.iterations++;
  }

  /** Keras `_clip_gradients`: clipnorm per variable, else globalClipnorm, else clipvalue. */
  #clip(
    grads: Float32Array,
    variables: readonly VariableSlice[] | undefined,
    squares: readonly GradSquares[],
  ): { grads: Float32Array; squares: readonly GradSquares[] } {
    if (!this.clipnorm && !this.globalClipnorm && !this.clipvalue) return { grads, squares };
    if (this.#clipped?.length !== grads.length) this.#clipped = new Float32Array(grads.length);
    const out = this.#clipped;
    out.set(grads);
    const vars = variables ?? [{ offset: 0, size: grads.length }];
    const sparse = new Map(squares.map((sq) => [sq.offset, sq]));
    /** A variable's squared norm: over its slices when Keras holds it as IndexedSlices. */
    const normSquared = (v: { offset: number; size: number }) => {
      const sq = sparse.get(v.offset);
      // The rows not listed add zeros: the sum over the listed ones, ascending, is the same number.
      return sq?.size === v.size ? sumOf(sq.values) : sumOfSquares(out.subarray(v.offset, v.offset + v.size));
    };
    const scaled: GradSquares[] = [];
    const scale = (v: { offset: number; size: number }, factor: number) => {
      const part = out.subarray(v.offset, v.offset + v.size);
      for (let i = 0; i < part.length; i++) part[i] = part[i]! * factor;
      const sq = sparse.get(v.offset);
      if (sq?.size === v.size) {
        // A non-finite factor (a non-finite norm) turns the zeros of the rows not listed into NaN too.
        const whole = Number.isFinite(factor) ? sq : allRows(sq);
        scaled.push({ ...whole, values: whole.values.map((x) => x * factor * factor) });
      }
    };
    if (this.clipnorm) {
      // Keras clip_by_norm: g * c / max(‖g‖, c).
      const c = this.clipnorm;
      for (const v of vars) scale(v, c / Math.max(Math.sqrt(normSquared(v)), c));
    } else if (this.globalClipnorm) {
      // Keras clip_by_global_norm: scale = c * min(1/‖g‖, 1/c), NaN when the norm is not finite.
      const c = this.globalClipnorm;
      const norm = Math.sqrt(vars.reduce((sum, v) => sum + normSquared(v), 0));
      const factor = c * Math.min(1 / norm, 1 / c) + (norm - norm);
      for (const v of vars) scale(v, factor);
    } else {
      // Keras's TensorFlow backend clips an IndexedSlices gradient slice by slice, before the
      // duplicates are summed; here the summed row is clipped (and its squares left as they are).
      const c = this.clipvalue!;
      for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(out[i]!, -c), c);
      return { grads: out, squares };
    }
    return { grads: out, squares: scaled };
  }

  /**
   * One update of `params` with the (clipped) gradient at rate `lr`. `squares` replace `g²` on the
   * rows they cover, for optimizers that square the gradient.
   */
  protected abstract update(
    params: Float32Array,
    grads: Float32Array,
    lr: number,
    squares: readonly GradSquares[],
  ): void;

  /** Keras 3 optimizer config. */
  abstract toConfig(): Config;

  protected baseConfig(): Config {
    return {
      name: this.name,
      learning_rate: typeof this.#lr === "number" ? this.#lr : this.#lr.toConfig(),
      weight_decay: this.weightDecay,
      clipnorm: this.clipnorm,
      global_clipnorm: this.globalClipnorm,
      clipvalue: this.clipvalue,
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
  return scheduleFromConfig((value ?? {}) as { class_name?: unknown; config?: unknown });
}

/**
 * The options every optimizer reads from a Keras config. Keras features Shoal does not implement
 * (EMA, loss scaling, gradient accumulation) are refused with the key that asked for them.
 */
export function optimizerOptionsFromConfig(c: Config): OptimizerOptions {
  const unsupported: [string, boolean][] = [
    ["use_ema", c.use_ema === true],
    ["loss_scale_factor", c.loss_scale_factor !== null && c.loss_scale_factor !== undefined],
    [
      "gradient_accumulation_steps",
      c.gradient_accumulation_steps !== null && c.gradient_accumulation_steps !== undefined,
    ],
  ];
  for (const [key, set] of unsupported) {
    if (set) {
      throw new TypeError(
        `Cannot build optimizer "${String(c.name)}" as Shoal does not support ${key}=${
          JSON.stringify(c[key])
        }: save the model from an optimizer without it`,
      );
    }
  }
  const numberOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    learningRate: learningRateFromConfig(c.learning_rate),
    weightDecay: numberOrNull(c.weight_decay),
    clipnorm: numberOrNull(c.clipnorm),
    clipvalue: numberOrNull(c.clipvalue),
    globalClipnorm: numberOrNull(c.global_clipnorm),
    ...(typeof c.name === "string" ? { name: c.name } : {}),
  };
}

function sumOf(x: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i]!;
  return sum;
}

/** `g²`, with the given squares in place of it on the variables they cover (zeros on rows not listed). */
function squaredGradient(g: Float32Array, squares: readonly GradSquares[]): Float32Array {
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = g[i]! * g[i]!;
  for (const sq of squares) {
    const table = out.subarray(sq.offset, sq.offset + sq.size);
    table.fill(0);
    scatterSquares(sq, table);
  }
  return out;
}

/** `sq` listing every row of its table (zeros on those it did not list). */
function allRows(sq: GradSquares): GradSquares {
  const rows = Int32Array.from({ length: sq.size / sq.rowSize }, (_, j) => j);
  return { ...sq, rows, values: denseSquares(sq) };
}

/** True when `a` and `b` are the same floats of the same memory. */
function sameView(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
}

function sumOfSquares(x: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i]! * x[i]!;
  return sum;
}

/** Adam's arrays in its kernel arena. */
interface ArenaArrays {
  arena: KernelArena;
  /** The parameters: the owner's own once a trainer moved them here ({@link Optimizer.residentBuffers}). */
  w: Float32Array;
  /** The gradient, written here by the owner's trainer or copied in. */
  g: Float32Array;
  slots: Float32Array[];
}

/** Adam's own options, besides those every optimizer takes. */
export interface AdamOptions extends OptimizerOptions {
  /** @default 0.9 */
  beta1?: number;
  /** @default 0.999 */
  beta2?: number;
  /** @default 1e-7 */
  epsilon?: number;
  /** Use the maximum of past velocities (AMSGrad) in the denominator. @default false */
  amsgrad?: boolean;
}

function adamOptionsFromConfig(c: Config): AdamOptions {
  return {
    ...optimizerOptionsFromConfig(c),
    beta1: c.beta_1 as number,
    beta2: c.beta_2 as number,
    epsilon: c.epsilon as number,
    amsgrad: c.amsgrad === true,
  };
}

/** `optimizers.Adam` (Keras defaults: learningRate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7, amsgrad false). */
export class Adam extends Optimizer {
  readonly className: string = "Adam";
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly amsgrad: boolean;
  #arena: ArenaArrays | undefined;
  /** Whose parameters live in the arena's `w`, once a trainer moved them there. */
  #owner: object | undefined;

  constructor(opts: AdamOptions = {}, defaults = { learningRate: 0.001, name: "adam" }) {
    super(opts, defaults);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-7;
    this.amsgrad = opts.amsgrad ?? false;
  }

  static fromConfig(c: Config): Adam {
    return new Adam(adamOptionsFromConfig(c));
  }

  /** Momentums and velocities, created together (m0, v0, m1, v1, …), then AMSGrad's maximum velocities. */
  get slotPlan(): readonly (readonly number[])[] {
    return this.amsgrad ? [[0, 1], [2]] : [[0, 1]];
  }

  /**
   * The arena's parameter and gradient arrays: the update reads them where they are, instead of three
   * copies of the model's size per step (in, in and out), which cost more than the update itself.
   */
  override residentBuffers(owner: object, length: number): ResidentBuffers | undefined {
    if (this.#owner !== undefined && this.#owner !== owner) return undefined;
    const a = this.#arenaFor(length);
    this.#owner = owner;
    return { params: a.w, grads: a.g };
  }

  /**
   * Runs the update in f32 SIMD, as Keras computes it. The slots live in the kernel's arena (a slot
   * set from outside, e.g. by loading a checkpoint, moves there on the next step); `w` and `g` are
   * copied in and `w` out unless they are the arena's own ({@link residentBuffers}).
   */
  protected update(w: Float32Array, g: Float32Array, lr: number, squares: readonly GradSquares[]): void {
    const k = this.#kernel(w.length);
    const t = this.iterations + 1;
    // Parameters from elsewhere are updated in `k.w` too; when it holds an owner's, those are kept aside.
    const resident = sameView(w, k.w);
    const owners = !resident && this.#owner !== undefined ? k.w.slice() : undefined;
    if (!resident) k.w.set(w);
    if (!sameView(g, k.g)) k.g.set(g);
    const step = {
      alpha: lr * Math.sqrt(1 - Math.pow(this.beta2, t)) / (1 - Math.pow(this.beta1, t)),
      b1: 1 - this.beta1,
      b2: 1 - this.beta2,
      epsilon: this.epsilon,
    };
    if (squares.length === 0) {
      this.#kernelStep(k, 0, w.length, step);
    } else {
      // The rows between sparse variables run in the kernel; the sparse ones here, with their squares.
      let at = 0;
      for (const sq of [...squares].sort((a, b) => a.offset - b.offset)) {
        this.#kernelStep(k, at, sq.offset, step);
        this.#sparseStep(k, sq, step);
        at = sq.offset + sq.size;
      }
      this.#kernelStep(k, at, w.length, step);
    }
    if (!resident) w.set(k.w);
    if (owners) k.w.set(owners);
  }

  /** The SIMD update of `[from, to)`. */
  #kernelStep(
    k: { arena: KernelArena; w: Float32Array; g: Float32Array },
    from: number,
    to: number,
    step: AdamStep,
  ) {
    if (to <= from) return;
    const [w, g, m, v, vHat] = [k.w, k.g, ...this.slots].map((a) => a!.subarray(from, to));
    if (vHat) k.arena.adamAmsgrad(w!, g!, m!, v!, vHat, step);
    else k.arena.adam(w!, g!, m!, v!, step);
  }

  /**
   * Keras's update of a variable whose squared gradient is `sq` (its slices squared, then summed):
   * every element of the table, with squares of zero on the rows `sq` does not list.
   */
  #sparseStep(k: { w: Float32Array; g: Float32Array }, sq: GradSquares, step: AdamStep): void {
    const [m, v, vHat] = this.slots as [Float32Array, Float32Array, Float32Array | undefined];
    const f = Math.fround;
    const { rows, rowSize, values } = sq;
    const tableRows = sq.size / rowSize;
    let listed = 0;
    for (let row = 0; row < tableRows; row++) {
      const has = listed < rows.length && rows[listed] === row;
      const from = listed * rowSize;
      if (has) listed++;
      for (let c = 0; c < rowSize; c++) {
        const i = sq.offset + row * rowSize + c;
        const g2 = has ? values[from + c]! : 0;
        const mi = f(m[i]! + f(f(k.g[i]! - m[i]!) * step.b1));
        let vi = f(v[i]! + f(f(g2 - v[i]!) * step.b2));
        m[i] = mi;
        v[i] = vi;
        if (vHat) vi = vHat[i] = Math.max(vHat[i]!, vi);
        k.w[i] = k.w[i]! - f(f(mi * step.alpha) / f(f(Math.sqrt(vi)) + step.epsilon));
      }
    }
  }

  /** The arena for `length` parameters, made anew (without an owner) when the length changed. */
  #arenaFor(length: number): ArenaArrays {
    if (this.#arena?.w.length !== length) {
      let arena: KernelArena;
      try {
        arena = new KernelArena(length, 2 + this.slotCount);
      } catch (error) {
        throw new RangeError(
          `Cannot run ${this.className}'s update on ${length} parameters: it keeps them, their gradient and ` +
            `its ${this.slotCount} slots in one WebAssembly memory. ${
              (error as Error).message
            }. Train fewer ` +
            "parameters, or use SGD or RMSprop, whose updates keep their arrays in JavaScript",
          { cause: error },
        );
      }
      this.#arena = {
        arena,
        w: arena.alloc(length),
        g: arena.alloc(length),
        slots: Array.from({ length: this.slotCount }, () => arena.alloc(length)),
      };
      this.#owner = undefined;
    }
    return this.#arena;
  }

  #kernel(length: number): ArenaArrays {
    const a = this.#arenaFor(length);
    if (a.slots.some((s, i) => this.slots[i] !== s)) {
      a.slots.forEach((s, i) => s.set(this.slots[i]!));
      this.slots = [...a.slots];
    }
    return a;
  }

  toConfig(): Config {
    return {
      ...this.baseConfig(),
      beta_1: this.beta1,
      beta_2: this.beta2,
      epsilon: this.epsilon,
      amsgrad: this.amsgrad,
    };
  }
}

/**
 * `optimizers.AdamW`: Adam with decoupled weight decay (Keras defaults: learningRate 0.001,
 * weightDecay 0.004, beta1 0.9, beta2 0.999, epsilon 1e-7). Before each update
 * `w -= w * weightDecay * lr`, then Adam's step.
 */
export class AdamW extends Adam {
  override readonly className = "AdamW";

  constructor(opts: AdamOptions = {}) {
    super(
      { ...opts, weightDecay: opts.weightDecay === undefined ? 0.004 : opts.weightDecay },
      { learningRate: 0.001, name: "adamw" },
    );
    if (this.weightDecay === null) {
      throw new TypeError(
        "Cannot create AdamW as weightDecay must be a number: received null. Give a weightDecay " +
          "(default 0.004), or use Adam for no weight decay",
      );
    }
  }

  static override fromConfig(c: Config): AdamW {
    return new AdamW(adamOptionsFromConfig(c));
  }
}

/** `optimizers.SGD` (Keras defaults: learningRate 0.01, momentum 0, nesterov false). */
export class SGD extends Optimizer {
  readonly className = "SGD";
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(opts: OptimizerOptions & { momentum?: number; nesterov?: boolean } = {}) {
    super(opts, { learningRate: 0.01, name: "SGD" });
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`Cannot create SGD as momentum must be in [0, 1]: received ${opts.momentum}`);
    }
  }

  static fromConfig(c: Config): SGD {
    return new SGD({
      ...optimizerOptionsFromConfig(c),
      momentum: c.momentum as number,
      nesterov: c.nesterov as boolean,
    });
  }

  /** The momentums, only when momentum is used. */
  get slotPlan(): readonly (readonly number[])[] {
    return this.momentum > 0 ? [[0]] : [];
  }

  /** SGD never squares the gradient: Keras's sparse update equals the dense one. */
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
  readonly rho: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly centered: boolean;

  constructor(
    opts: OptimizerOptions & { rho?: number; momentum?: number; epsilon?: number; centered?: boolean } = {},
  ) {
    super(opts, { learningRate: 0.001, name: "rmsprop" });
    this.rho = opts.rho ?? 0.9;
    this.momentum = opts.momentum ?? 0;
    this.epsilon = opts.epsilon ?? 1e-7;
    this.centered = opts.centered ?? false;
  }

  static fromConfig(c: Config): RMSprop {
    return new RMSprop({
      ...optimizerOptionsFromConfig(c),
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

  protected update(w: Float32Array, g: Float32Array, lr: number, squares: readonly GradSquares[]): void {
    const velocity = this.slots[0]!;
    // Keras's TensorFlow backend fails on a sparse gradient with centered=True; the dense square
    // keeps velocity - average² >= 0 here.
    const g2 = squares.length > 0 && !this.centered ? squaredGradient(g, squares) : null;
    let k = 1;
    const momentum = this.momentum > 0 ? this.slots[k++]! : null;
    const average = this.centered ? this.slots[k++]! : null;
    const rho = this.rho, eps = this.epsilon;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      const vi = rho * velocity[i]! + (1 - rho) * (g2 ? g2[i]! : gi * gi);
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
  ["AdamW", AdamW],
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
