/**
 * The Keras model API: `Sequential` and the Functional `Model`, with `compile`, `fit`, `evaluate`,
 * `predict`, `summary` and weight access. Training runs through the coordinator's one loop
 * ({@link trainLoop}) on an in-process pool or on NATS workers.
 */
import {
  type Callback,
  CallbackList,
  type CallbackModel,
  History,
  Progbar,
  writeStdout,
} from "../shared/callbacks/mod.ts";
import { Conv2D, Dense, Flatten } from "../shared/model/layers/mod.ts";
import {
  applyInSequence,
  type BackendName,
  didYouMean,
  Engine,
  getOptimizer,
  initBackend,
  Input,
  InputLayer,
  type Layer,
  type LossName,
  type LossSpec,
  type MetricSpec,
  Network,
  type Optimizer,
  resolveMetric,
  SymbolicTensor,
  tf,
  toLossSpec,
} from "../shared/model/mod.ts";
import {
  type DataLike,
  type Dataset,
  fromRowDataset,
  isArrayData,
  sampleShape,
  sliceRows,
  toDataset,
} from "./data.ts";
import { Dataset as RowDataset } from "../shared/io/dataset/mod.ts";
import { LocalPool } from "./local_pool.ts";
import { type LoadModelOptions, loadWeights, openModelArchive, saveModel, saveWeights } from "./saving.ts";
import { createDistributedPool, type DistributedPoolOptions } from "./distributed/pool.ts";
import type { WorkerPool } from "./pool.ts";
import { evalLogs } from "./running_metrics.ts";
import { sampleWeightsOf, type WeightOptions, withWeightColumn } from "./sample_weights.ts";
import { trainLoop, type TrainReport } from "./trainer.ts";

export interface CompileOptions {
  /** @default "rmsprop" (Keras) */
  optimizer?: string | Optimizer;
  /** A Keras loss name (`"huber"`) or a loss with options (`new losses.Huber({ delta: 2 })`). */
  loss: string | LossSpec;
  /** Metric names (`"accuracy"`, `"auc"`) or metric objects (`new metrics.AUC({ numThresholds: 100 })`). @default [] */
  metrics?: (string | MetricSpec)[];
}

/**
 * Inputs keyed by the names of the model's `Input`s, as Keras accepts them:
 * `fit({ numeric: xa, extra: xb }, y)` for `new Input({ shape: [10], name: "numeric" })` and so on.
 */
export interface NamedInputs {
  readonly [inputName: string]: DataLike;
}

/** What `fit`, `evaluate` and `predict` take as x: one input, a list in input order, or named inputs. */
export type InputData = DataLike | DataLike[] | NamedInputs;

/** Keras's `verbose`: 0 silent, 1 progress bar, 2 one line; `"auto"` is 1. */
export type Verbose = "auto" | 0 | 1 | 2;

/** Where the computation runs: `{ workers: 2 }` spawns local workers over an embedded NATS server. */
export type DistributeOptions = Omit<DistributedPoolOptions, "backend">;

export interface FitOptions extends WeightOptions {
  /** @default 1 */
  epochs?: number;
  /** @default 32 */
  batchSize?: number;
  /** Fraction of the data, taken from the end before shuffling, used for validation. @default 0 */
  validationSplit?: number;
  /** Data to evaluate at each epoch's end: `[x, y]`, or a dataset (`datasets.fromNpz(...)`). */
  validationData?: [InputData, DataLike] | RowDataset;
  /** @default true */
  shuffle?: boolean;
  /** @default 0 */
  initialEpoch?: number;
  /** 0 silent, 1 progress bar, 2 one line per epoch; `"auto"` is 1. @default "auto" */
  verbose?: Verbose;
  callbacks?: Callback[];
  /** Seed for shuffling and dropout. @default the model's seed */
  seed?: number;
  /** Compute backend. @default "auto" */
  backend?: BackendName;
  distribute?: DistributeOptions;
  /**
   * Aborting it (e.g. on SIGTERM) stops training at the next step boundary: `BackupAndRestore`
   * callbacks write their backup, `onTrainEnd` does not run, and `fit` rejects with a
   * `TrainingInterruptedError`.
   */
  signal?: AbortSignal;
}

export interface EvaluateOptions {
  /** @default 32 */
  batchSize?: number;
  /** One weight per sample (shape [n] or [n, 1]) for the loss, as Keras's `sample_weight`. */
  sampleWeight?: DataLike;
  /**
   * 0 silent; 1 Keras's progress bar (`313/313 ━━━━━━━━━━━━━━━━━━━━ 1s 2ms/step - accuracy: … - loss: …`,
   * only the final line when stdout is not a terminal); 2 one line; `"auto"` is 1.
   * @default "auto"
   */
  verbose?: Verbose;
}

export interface PredictOptions {
  /** @default 32 */
  batchSize?: number;
  /** As for {@link EvaluateOptions.verbose}: a progress bar without metrics. @default "auto" */
  verbose?: Verbose;
}

/** Keras's verbose as a number; anything else is a `RangeError` naming the call and the value. */
function verbosity(verbose: Verbose | undefined, call: string): 0 | 1 | 2 {
  if (verbose === undefined || verbose === "auto") return 1;
  if (verbose === 0 || verbose === 1 || verbose === 2) return verbose;
  throw new RangeError(
    `Cannot ${call} as verbose must be "auto", 0 (silent), 1 (progress bar) or 2 (one line): ` +
      `received verbose=${JSON.stringify(verbose)}`,
  );
}

function positiveInteger(value: number, name: string, call: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`Cannot ${call} as ${name} must be a positive integer: received ${name}=${value}`);
  }
  return value;
}

/** Keras's progress bar for `steps` batches of evaluate/predict, or null at verbose 0. */
function progressBar(verbose: 0 | 1 | 2, steps: number): Progbar | null {
  if (verbose === 0 || steps === 0) return null;
  return new Progbar({ target: steps, verbose, write: writeStdout, dynamic: Deno.stdout.isTerminal() });
}

/** Whether x is a record of inputs by name rather than one input or a list. */
function isNamedInputs(x: InputData): x is NamedInputs {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof tf.Tensor) &&
    !isArrayData(x);
}

function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(", ")}]`;
}

/** What the last `fit` measured (for `--summary`). */
export interface FitReport extends TrainReport {
  wallSeconds: number;
  backend: string;
  workers: number;
}

interface Compiled {
  loss: LossSpec;
  metrics: MetricSpec[];
}

/** A Keras model. Construct with inputs/outputs (Functional) or use {@link Sequential}. */
export class Model implements CallbackModel {
  stopTraining = false;
  /** The seed for initial weights, shuffling and dropout. */
  readonly seed: number;
  #network: Network | undefined;
  #optimizer: Optimizer | undefined;
  #compiled: Compiled | undefined;
  #warnedScale = false;
  /** Measurements of the last `fit`. */
  lastFit: FitReport | undefined;

  constructor(
    opts: {
      inputs?: SymbolicTensor | SymbolicTensor[];
      outputs?: SymbolicTensor | SymbolicTensor[];
      name?: string;
      seed?: number;
    } = {},
  ) {
    this.seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (opts.inputs && opts.outputs) {
      const list = <T>(v: T | T[]) => (Array.isArray(v) ? v : [v]);
      this.#network = new Network({
        inputs: list(opts.inputs),
        outputs: list(opts.outputs),
        ...(opts.name ? { name: opts.name } : {}),
        kind: "Functional",
        seed: this.seed,
      });
    } else if (opts.inputs || opts.outputs) {
      throw new TypeError("Cannot create a Model with only inputs or only outputs: pass both");
    }
  }

  /** Wraps an existing network (used when loading a saved model). */
  static fromNetwork(network: Network, seed?: number): Model {
    const model = network.kind === "Sequential" ? new Sequential([], { seed }) : new Model({ seed });
    model.#network = network;
    return model;
  }

  /** The built network; Sequential models build on first use. */
  get network(): Network {
    if (!this.#network) {
      throw new Error(
        "This model has not yet been built. Give the first layer an inputShape, or call fit/predict first.",
      );
    }
    return this.#network;
  }

  protected setNetwork(network: Network): void {
    this.#network = network;
  }

  protected get isBuilt(): boolean {
    return this.#network !== undefined;
  }

  /** Builds from data shapes when needed (Sequential without inputShape). */
  protected ensureBuilt(_shapes: number[][]): void {}

  get name(): string {
    return this.network.name;
  }

  get layers(): Layer[] {
    return this.network.layers.filter((l) => !(l instanceof InputLayer));
  }

  /** The compiled optimizer (Keras `model.optimizer`); its `learningRate` is readable and settable. */
  get optimizer(): Optimizer {
    if (!this.#optimizer) throw new Error("You must call compile() before using the optimizer");
    return this.#optimizer;
  }

  set optimizer(o: Optimizer) {
    this.#optimizer = o;
  }

  /** The compiled loss's name (`huber`). */
  get compiledLoss(): LossName | undefined {
    return this.#compiled?.loss.name;
  }

  /** The compiled loss with its options. */
  get compiledLossSpec(): LossSpec | undefined {
    return this.#compiled?.loss;
  }

  get compiledMetrics(): MetricSpec[] {
    return this.#compiled?.metrics ?? [];
  }

  /** Configures the model for training (Keras `compile`). */
  compile(opts: CompileOptions): void {
    const loss = toLossSpec(opts.loss);
    this.#optimizer = getOptimizer(opts.optimizer ?? "rmsprop");
    const metricNames = opts.metrics ?? [];
    this.#compiled = {
      loss,
      metrics: metricNames.map((m) => resolveMetric(m, loss.name, this.outputUnitsHint())),
    };
  }

  /** Units of the output, for metrics that need the class count (0 when not known yet). */
  protected outputUnitsHint(): number {
    if (!this.isBuilt) return 0;
    const s = this.network.outputShapes[0]!;
    return s[s.length - 1] ?? 1;
  }

  private requireCompiled(): Compiled {
    if (!this.#compiled) {
      throw new Error(
        "You must compile your model before training/testing. Use `model.compile({ optimizer, loss })`.",
      );
    }
    return this.#compiled;
  }

  /** Trains the model (Keras `fit`) on x and y, or on a dataset: `fit(dataset, { epochs })`. Returns the History. */
  fit(x: RowDataset, opts?: FitOptions): Promise<History>;
  fit(x: InputData, y: DataLike, opts?: FitOptions): Promise<History>;
  async fit(x: InputData | RowDataset, y?: DataLike | FitOptions, opts: FitOptions = {}): Promise<History> {
    if (x instanceof RowDataset) opts = (y ?? {}) as FitOptions;
    const compiled = this.requireCompiled();
    const epochs = opts.epochs ?? 1;
    const batchSize = opts.batchSize ?? 32;
    const validationSplit = opts.validationSplit ?? 0;
    const verbose = verbosity(opts.verbose, "fit");
    const initialEpoch = opts.initialEpoch ?? 0;
    if (!Number.isInteger(epochs) || epochs <= 0) {
      throw new RangeError(`Cannot fit as epochs must be a positive integer: received epochs=${epochs}`);
    }
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw new RangeError(
        `Cannot fit as batchSize must be a positive integer: received batchSize=${batchSize}`,
      );
    }
    if (!(validationSplit >= 0 && validationSplit < 1)) {
      throw new RangeError(
        `Cannot fit as validationSplit must be in [0, 1): received validationSplit=${validationSplit}`,
      );
    }
    if (!Number.isInteger(initialEpoch) || initialEpoch < 0 || initialEpoch >= epochs) {
      throw new RangeError(
        `Cannot fit as initialEpoch must be in [0, epochs): received initialEpoch=${initialEpoch}`,
      );
    }
    const all = x instanceof RowDataset
      ? fromRowDataset(x)
      : toDataset(this.inputList(x, "fit"), y as DataLike);
    this.checkBatchAxis(all, "fit");
    this.ensureBuilt(all.inputs.map(sampleShape));
    this.checkData(all, compiled, "fit");
    const weights = sampleWeightsOf(all, opts, "fit");
    let train = all;
    let val: Dataset | null = null;
    if (opts.validationData instanceof RowDataset) {
      val = fromRowDataset(opts.validationData);
      this.checkData(val, compiled, "fit");
    } else if (opts.validationData) {
      val = toDataset(this.inputList(opts.validationData[0], "fit"), opts.validationData[1]);
      this.checkBatchAxis(val, "fit");
      this.checkData(val, compiled, "fit");
    } else if (validationSplit > 0) {
      // Keras: the last fraction of the data, taken before any shuffling.
      const splitAt = Math.floor(all.length * (1 - validationSplit));
      if (splitAt === 0 || splitAt === all.length) {
        throw new RangeError(
          `Cannot split ${all.length} samples with validationSplit=${validationSplit}: ` +
            "it leaves no training or no validation samples. Pass more data or another split.",
        );
      }
      // Keras splits sample weights with the data; class weights apply to training only.
      if (weights && opts.classWeight !== undefined) weights.fill(1, splitAt);
      train = sliceRows(all, 0, splitAt);
      val = sliceRows(all, splitAt, all.length);
    }
    if (weights) {
      if (val?.source) {
        throw new RangeError(
          "Cannot fit with sampleWeight or classWeight and a file-backed validationData: pass the " +
            "validation data as arrays",
        );
      }
      const weighted = withWeightColumn(all, weights);
      const n = train.length;
      train = sliceRows(weighted, 0, n);
      if (val && !opts.validationData) val = sliceRows(weighted, n, all.length);
      else if (val) val = withWeightColumn(val, null);
    }
    const start = performance.now();
    const backend = await initBackend(opts.backend ?? "auto");
    const engine = new Engine(this.network, {
      loss: compiled.loss,
      metrics: compiled.metrics,
      seed: opts.seed ?? this.seed,
      ...(weights ? { weightedLabels: { shape: sampleShape(all.y!) } } : {}),
    });
    const pool: WorkerPool = opts.distribute
      ? await createDistributedPool(engine, {
        ...opts.distribute,
        backend: opts.backend ?? "auto",
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
      : new LocalPool(engine, backend.name);
    let finished = false;
    try {
      await pool.setData("train", train);
      if (val) await pool.setData("val", val);
      const callbacks = new CallbackList(opts.callbacks ?? [], {
        model: this,
        params: { epochs, steps: Math.ceil(train.length / batchSize), verbose },
      });
      const report = await trainLoop(this, pool, train, {
        epochs,
        batchSize,
        shuffle: opts.shuffle ?? true,
        initialEpoch,
        seed: opts.seed ?? this.seed,
        validation: val !== null,
        callbacks,
        metrics: compiled.metrics,
        ...(x instanceof RowDataset
          ? { order: (e: number) => x.order(opts.seed ?? this.seed, e, opts.shuffle ?? true) }
          : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      finished = true;
      this.lastFit = {
        ...report,
        timings: { ...report.timings, ...pool.timings?.() },
        wallSeconds: (performance.now() - start) / 1000,
        backend: pool.backend,
        workers: pool.workers,
      };
      return callbacks.history!;
    } finally {
      await pool.close(finished ? "finished" : "stopped");
    }
  }

  /** Returns `[loss, ...metrics]` on x and y or on a dataset, dropout off (Keras `evaluate`). */
  evaluate(x: RowDataset, opts?: EvaluateOptions): Promise<number[]>;
  evaluate(x: InputData, y: DataLike, opts?: EvaluateOptions): Promise<number[]>;
  async evaluate(
    x: InputData | RowDataset,
    y?: DataLike | EvaluateOptions,
    opts: EvaluateOptions = {},
  ): Promise<number[]> {
    if (x instanceof RowDataset) opts = (y ?? {}) as EvaluateOptions;
    const compiled = this.requireCompiled();
    const verbose = verbosity(opts.verbose, "evaluate");
    const batchSize = positiveInteger(opts.batchSize ?? 32, "batchSize", "evaluate");
    const ds = x instanceof RowDataset
      ? fromRowDataset(x)
      : toDataset(this.inputList(x, "evaluate"), y as DataLike);
    this.checkBatchAxis(ds, "evaluate");
    this.ensureBuilt(ds.inputs.map(sampleShape));
    this.checkData(ds, compiled, "evaluate");
    const weights = sampleWeightsOf(ds, {
      ...(opts.sampleWeight !== undefined ? { sampleWeight: opts.sampleWeight } : {}),
    }, "evaluate");
    const backend = await initBackend("auto");
    const pool = new LocalPool(
      new Engine(this.network, {
        loss: compiled.loss,
        metrics: compiled.metrics,
        seed: this.seed,
        ...(weights ? { weightedLabels: { shape: sampleShape(ds.y!) } } : {}),
      }),
      backend.name,
    );
    const steps = Math.ceil(ds.length / batchSize);
    const bar = progressBar(verbose, steps);
    let r;
    try {
      await pool.setData("eval", weights ? withWeightColumn(ds, weights) : ds);
      r = await pool.evaluate("eval", this.network.params, this.network.state, batchSize, (batch, sums) => {
        if (batch + 1 < steps) {
          bar?.update(batch + 1, Object.entries(evalLogs(compiled.metrics, sums)), false);
        }
      });
    } finally {
      await pool.close();
    }
    const logs = evalLogs(compiled.metrics, r);
    bar?.update(steps, Object.entries(logs), true);
    return [logs.loss!, ...compiled.metrics.map((m) => logs[m.name]!)];
  }

  /** Model outputs for the inputs or a dataset's inputs (its labels unused), dropout off (Keras `predict`). */
  async predict(x: InputData | RowDataset, opts: PredictOptions = {}): Promise<tf.Tensor> {
    const verbose = verbosity(opts.verbose, "predict");
    const batchSize = positiveInteger(opts.batchSize ?? 32, "batchSize", "predict");
    const ds = x instanceof RowDataset ? fromRowDataset(x) : toDataset(this.inputList(x, "predict"), null);
    this.checkBatchAxis(ds, "predict");
    this.ensureBuilt(ds.inputs.map(sampleShape));
    this.network.checkInputShapes(ds.inputs.map(sampleShape));
    const backend = await initBackend("auto");
    const compiled = this.#compiled ?? { loss: "mean_squared_error" as const, metrics: [] };
    const pool = new LocalPool(new Engine(this.network, { ...compiled, seed: this.seed }), backend.name);
    const steps = Math.ceil(ds.length / batchSize);
    const bar = progressBar(verbose, steps);
    let out;
    try {
      await pool.setData("predict", ds);
      out = await pool.predict("predict", this.network.params, this.network.state, batchSize, (batch) => {
        if (batch + 1 < steps) bar?.update(batch + 1, [], false);
      });
    } finally {
      await pool.close();
    }
    bar?.update(steps, [], true);
    return tf.tensor(out, [ds.length, ...this.network.outputShapes[0]!]);
  }

  /** The names of the model's inputs, in order; null for a Sequential model not built yet. */
  private inputNames(): string[] | null {
    if (!this.isBuilt && this instanceof Sequential) {
      const first = this.pendingLayers[0];
      const declared = first instanceof InputLayer ? first.shape : first?.inputShape;
      if (!declared) return null;
    }
    return this.network.inputLayerNames();
  }

  /**
   * x as one input or a list in input order: named inputs (`{ numeric: xa, extra: xb }`) are put in
   * the order of the model's inputs. Unknown or missing names are a `TypeError` naming them and the
   * model's input names.
   */
  private inputList(x: InputData, call: string): DataLike | DataLike[] {
    if (!isNamedInputs(x)) return x;
    const given = Object.keys(x);
    const names = this.inputNames();
    if (names === null) {
      if (given.length === 1) return x[given[0]!]!;
      throw new TypeError(
        `Cannot ${call} on named inputs ${given.join(", ")} as this Sequential model has one input and ` +
          "is not built yet: pass x itself, or give the first layer an inputShape",
      );
    }
    const unknown = given.filter((k) => !names.includes(k));
    if (unknown.length > 0) {
      throw new TypeError(
        `Cannot ${call} as model "${this.name}" has no input named ${
          unknown.map((k) => `"${k}"`).join(", ")
        }: ` +
          `its inputs are ${names.map((k) => `"${k}"`).join(", ")}.` + didYouMean(unknown[0]!, names),
      );
    }
    const missing = names.filter((k) => !given.includes(k));
    if (missing.length > 0) {
      throw new TypeError(
        `Cannot ${call} as input ${missing.map((k) => `"${k}"`).join(", ")} of model "${this.name}" is ` +
          `missing: pass a value for each of its inputs ${names.map((k) => `"${k}"`).join(", ")}`,
      );
    }
    return names.map((k) => x[k]!);
  }

  /**
   * Rejects a 1-D input where the model expects samples of rank 1 or more: Keras models take
   * [batch, ...inputShape], and a 1-D array is either one sample without its batch axis or many
   * samples of one value each.
   */
  private checkBatchAxis(ds: Dataset, call: string): void {
    ds.inputs.forEach((input, i) => {
      if (input.shape.length !== 1) return;
      let expected: readonly number[] | undefined;
      try {
        expected = this.inputNames() === null ? undefined : this.network.inputs[i]?.shape;
      } catch {
        expected = undefined;
      }
      if (expected !== undefined && expected.length === 0) return;
      const what = ds.inputs.length > 1 ? `input ${i}` : "x";
      const n = input.shape[0]!;
      const want = expected === undefined ? "[batch, ...inputShape]" : shapeText(["batch", ...expected]);
      const size = expected?.reduce((a, b) => a * b, 1) ?? 1;
      let fix: string;
      if (expected === undefined || size === 1) {
        fix = `for ${n} samples of one value each, pass ${what}.reshape([-1, 1])`;
      } else if (n === size) {
        fix = `for one sample, pass ${what}.reshape(${shapeText([1, ...expected])})`;
      } else if (n % size === 0) {
        fix = `for ${n / size} samples, pass ${what}.reshape(${shapeText([-1, ...expected])})`;
      } else {
        fix = `pass an array of shape ${shapeText(["n", ...expected])}, one row per sample`;
      }
      throw new RangeError(
        `Cannot ${call} on ${what} of shape [${n}] as the model expects ${want} ` +
          `(the samples along the first axis, then inputShape): ${fix}`,
      );
    });
  }

  /**
   * Checks shapes and labels against the model before any compute. y must match the output: class ids
   * of shape [n] or [n, 1] for sparse_categorical_crossentropy, the output's shape for the other losses
   * (or [n] for an output of one unit).
   */
  private checkData(ds: Dataset, compiled: Compiled, call: string): void {
    this.network.checkInputShapes(ds.inputs.map(sampleShape));
    if (!this.#warnedScale) this.warnUnscaled(ds);
    if (!ds.y) return;
    const outShape = this.network.outputShapes[0]!;
    const classes = outShape[outShape.length - 1]!;
    const yShape = sampleShape(ds.y);
    const yWidth = yShape.length === 0 ? 1 : yShape[yShape.length - 1]!;
    const same = (a: readonly number[], b: readonly number[]) =>
      a.length === b.length && a.every((d, k) => d === b[k]);
    if (compiled.loss.name === "categorical_crossentropy" && yWidth !== classes) {
      throw new RangeError(
        `categorical_crossentropy expects one-hot labels of shape [n, ${classes}] but received labels of shape ` +
          `[${ds.y.shape}]. For integer class labels use loss "sparse_categorical_crossentropy", or one-hot ` +
          `encode them with utils.toCategorical(y, ${classes}).`,
      );
    }
    if (compiled.loss.name === "sparse_categorical_crossentropy") {
      const want = outShape.slice(0, -1);
      const ok = same(yShape, want) || (yShape.length === want.length + 1 && yShape.at(-1) === 1);
      if (!ok) {
        throw new RangeError(
          `sparse_categorical_crossentropy expects integer class labels of shape ${
            shapeText(["n", ...want])
          } ` +
            `but received labels of shape ${shapeText(ds.y.shape)} for a model output of shape ` +
            `${shapeText(["n", ...outShape])}. For one-hot labels use loss "categorical_crossentropy".`,
        );
      }
      const d = ds.y.data;
      for (let i = 0; i < d.length; i++) {
        const v = d[i]!;
        if (!(Number.isInteger(v) && v >= 0 && v < classes)) {
          throw new RangeError(
            `Received a label value of ${v} (sample ${i}) which is outside the valid range of [0, ${classes}) ` +
              `for an output of ${classes} units. Labels must be integer class ids below the number of output units.`,
          );
        }
      }
      return;
    }
    const oneUnit = classes === 1 && same(yShape, outShape.slice(0, -1));
    if (!same(yShape, outShape) && !oneUnit) {
      const n = ds.y.shape[0]!;
      const last = yShape.length === 0 ? 1 : yShape.at(-1)!;
      const layerFix = yShape.length === outShape.length && last !== classes
        ? `, or end the model with ${last} units (e.g. new layers.Dense(${last})) to predict ${last} values per sample`
        : "";
      throw new RangeError(
        `Cannot ${call} with loss ${compiled.loss.name} as y must have the shape of the model's output ` +
          `${shapeText(["n", ...outShape])}: received y of shape ${shapeText(ds.y.shape)}. Pass y of shape ` +
          `${shapeText([n, ...outShape])}${layerFix}.`,
      );
    }
  }

  /** One-time warning when a Dense/Conv2D input is far outside [-1, 1] (unnormalized pixels). */
  private warnUnscaled(ds: Dataset): void {
    ds.inputs.forEach((input, i) => {
      const consumer = this.network.nodes.find((n) => n.inputs.includes(this.network.inputs[i]!))?.layer;
      if (!(consumer instanceof Dense || consumer instanceof Conv2D || consumer instanceof Flatten)) return;
      let max = 0;
      const d = input.data;
      const stride = Math.max(1, Math.floor(d.length / 100_000));
      for (let k = 0; k < d.length; k += stride) max = Math.max(max, Math.abs(d[k]!));
      if (max > 10) {
        this.#warnedScale = true;
        console.warn(
          `Warning: input ${i} has values up to ${max}; neural networks train best on inputs scaled to ` +
            `[0, 1] or [-1, 1]. Normalize the data first, e.g. x.div(255) for 8-bit pixels.`,
        );
      }
    });
  }

  getWeights(): Float32Array[] {
    return this.network.getWeights();
  }

  setWeights(weights: readonly Float32Array[]): void {
    this.network.setWeights(weights);
  }

  namedWeights(): { name: string; data: Float32Array }[] {
    return this.network.namedWeights();
  }

  /** The Keras 3 model config. */
  toJSON(): unknown {
    return this.network.toConfig();
  }

  countParams(): number {
    return this.network.countParams();
  }

  /** Writes a Keras 3 `.keras` archive: config, weights and optimizer state (atomic). */
  save(path: string): Promise<void> {
    return saveModel(this, path);
  }

  /** Writes a Keras 3 `.weights.h5` file (atomic). */
  saveWeights(path: string): Promise<void> {
    return saveWeights(this, path);
  }

  /** Loads weights (and optimizer state) from `.weights.h5` or `.keras` into this model. */
  loadWeights(path: string): Promise<void> {
    return loadWeights(this, path);
  }

  /** Prints a Keras-style table of layers, output shapes and parameter counts. */
  summary(print: (line: string) => void = console.log): void {
    const net = this.network;
    const functional = net.kind === "Functional";
    const rows = net.layers
      .filter((l) => functional || !(l instanceof InputLayer))
      .map((l) => {
        const node = l.inboundNodes[0]!;
        const connected = node.inputs.map((t) => `${t.node.layer.name}[${t.node.index}][${t.index}]`)
          .join(", ") || "-";
        const shapes = node.outputs.map((t) => `(None, ${t.shape.join(", ")})`);
        return [
          `${l.name} (${l.className})`,
          shapes.length === 1 ? shapes[0]! : `[${shapes.join(", ")}]`,
          l.countParams().toLocaleString("en-US"),
          connected,
        ];
      });
    const headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"];
    const cols = functional ? 4 : 3;
    const widths = headers.slice(0, cols).map((h, i) =>
      Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 2
    );
    const cell = (
      s: string,
      i: number,
    ) => (i === 2 ? s.padStart(widths[i]! - 1) + " " : " " + s.padEnd(widths[i]! - 1));
    const line = (l: string, m: string, r: string, f: string) =>
      l + widths.map((w) => f.repeat(w)).join(m) + r;
    print(`Model: "${net.name}"`);
    print(line("┏", "┳", "┓", "━"));
    print("┃" + headers.slice(0, cols).map(cell).join("┃") + "┃");
    print(line("┡", "╇", "┩", "━"));
    rows.forEach((r, k) => {
      print("│" + r.slice(0, cols).map(cell).join("│") + "│");
      if (k < rows.length - 1) print(line("├", "┼", "┤", "─"));
    });
    print(line("└", "┴", "┘", "─"));
    const bytes = (n: number) => {
      const b = n * 4;
      return b >= 1024 * 1024
        ? `${(b / 1024 / 1024).toFixed(2)} MB`
        : b >= 1024
        ? `${(b / 1024).toFixed(2)} KB`
        : `${b} B`;
    };
    const trainable = net.params.length, fixed = net.state.length;
    print(` Total params: ${(trainable + fixed).toLocaleString("en-US")} (${bytes(trainable + fixed)})`);
    print(` Trainable params: ${trainable.toLocaleString("en-US")} (${bytes(trainable)})`);
    print(` Non-trainable params: ${fixed.toLocaleString("en-US")} (${bytes(fixed)})`);
  }
}

/** A linear stack of layers (Keras `Sequential`). */
export class Sequential extends Model {
  /** Layers added before the model is built. */
  pendingLayers: Layer[];

  /** Before the model is built, the units of its last Dense layer. */
  protected override outputUnitsHint(): number {
    if (this.isBuilt) return super.outputUnitsHint();
    const last = this.pendingLayers.at(-1);
    return last instanceof Dense ? last.units : 0;
  }
  readonly #name: string | undefined;

  constructor(layers: Layer[] = [], opts: { name?: string; seed?: number } = {}) {
    super(opts.seed === undefined ? {} : { seed: opts.seed });
    this.pendingLayers = [];
    this.#name = opts.name;
    for (const l of layers) this.add(l);
  }

  /** Appends a layer (Keras `model.add`). */
  add(layer: Layer): void {
    if (this.isBuilt) throw new Error("Cannot add layers to a Sequential model after it has been built");
    this.pendingLayers.push(layer);
  }

  override get network(): Network {
    if (!this.isBuilt) {
      const first = this.pendingLayers[0];
      const shape = first instanceof InputLayer ? first.shape : first?.inputShape;
      if (shape) this.build([...shape]);
    }
    return super.network;
  }

  protected override ensureBuilt(shapes: number[][]): void {
    if (this.isBuilt) return;
    const first = this.pendingLayers[0];
    const shape = first instanceof InputLayer ? first.shape : first?.inputShape;
    this.build(shape ? [...shape] : shapes[0]!);
  }

  /** Builds the model for a per-sample input shape. */
  build(inputShape: number[]): void {
    if (this.pendingLayers.length === 0) throw new Error("Cannot build a Sequential model with no layers");
    const first = this.pendingLayers[0]!;
    const named = first instanceof InputLayer && first.name ? { name: first.name } : {};
    const input = first instanceof InputLayer
      ? first.inboundNodes[0]?.output ?? new Input({ shape: inputShape, ...named })
      : new Input({ shape: inputShape });
    let x: SymbolicTensor = input;
    for (const l of this.pendingLayers) {
      if (l instanceof InputLayer) continue;
      x = applyInSequence(l, x);
    }
    this.setNetwork(
      new Network({
        inputs: [input],
        outputs: [x],
        ...(this.#name ? { name: this.#name } : {}),
        kind: "Sequential",
        seed: this.seed,
      }),
    );
  }
}

/**
 * Loads a model saved by `model.save` or by Keras 3 (`model.save("x.keras")`), compiled from the
 * archive's compile config with its optimizer state unless `compile: false` (Keras
 * `keras.models.load_model`).
 *
 * @throws {RangeError} when `path` does not end in `.keras`.
 * @throws {KerasFileError} when the archive is missing, truncated or damaged.
 * @throws {ModelMismatchError} when a stored weight does not fit the rebuilt model.
 */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<Model> {
  const { network, finish } = await openModelArchive(path, opts);
  const model = Model.fromNetwork(network, opts.seed);
  finish(model);
  return model;
}
