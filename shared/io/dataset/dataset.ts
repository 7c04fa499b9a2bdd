/**
 * A dataset the trainer reads by row: from arrays in memory, from sharded `.npz` or CSV files that
 * every worker opens itself, or spilled from an async generator of batches. Rows are numbered across
 * shards (shard after shard, rows in file order); an epoch visits them in an order that is a function
 * of (seed, epoch) only.
 */
import { z } from "npm:zod@4.6.7";
import { zipSync } from "npm:fflate@0.8.3";
import { join } from "node:path";
import { DatasetError } from "../dataset_error.ts";
import { encodeNpy } from "../npy.ts";
import { CsvSource } from "./csv_source.ts";
import { expandShards } from "./glob.ts";
import { NpzSource } from "./npz_source.ts";
import { checkPrefetch, DEFAULT_PREFETCH } from "./prefetch.ts";
import { bufferedOrder, globalOrder, identityOrder } from "./order.ts";
import { type ElementSpec, MemoryRows, type RowArray, type Rows, type RowSource } from "./rows.ts";

const Shape = z.array(z.int().nonnegative());
const Element = z.object({ inputs: z.array(Shape), y: Shape.nullable() });
const FileRows = z.object({ path: z.string().min(1), rows: z.int().nonnegative() });
/** Batches a reader reads ahead of need (see prefetch.ts); absent: 1. */
const Prefetch = z.int().min(0).max(2).optional();

/**
 * How another process opens the same rows: the files (absolute paths) with the row count each had,
 * the arrays or columns taken, and the row shapes, all checked again where it is opened.
 */
export const DatasetSpecSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("npz"),
    files: z.array(FileRows).min(1),
    inputs: z.array(z.string()),
    y: z.string().nullable(),
    element: Element,
    prefetch: Prefetch,
  }),
  z.object({
    kind: z.literal("csv"),
    files: z.array(FileRows).min(1),
    inputs: z.array(z.array(z.string())),
    y: z.array(z.string()).nullable(),
    element: Element,
    prefetch: Prefetch,
  }),
]);

/** See {@link DatasetSpecSchema}. */
export type DatasetSpec = z.infer<typeof DatasetSpecSchema>;

function sameElement(a: ElementSpec, b: ElementSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Opens the rows a {@link DatasetSpec} names, on this host.
 *
 * @throws {DatasetError} naming the path and this host when a file cannot be opened, or when the
 * files differ from what the spec recorded.
 */
export function openSpec(spec: DatasetSpec): RowSource {
  const paths = spec.files.map((f) => f.path);
  const rows = spec.files.map((f) => f.rows);
  const source = spec.kind === "npz"
    ? new NpzSource(paths, { inputs: spec.inputs, y: spec.y }, rows)
    : new CsvSource(paths, { inputs: spec.inputs, y: spec.y }, rows);
  if (!sameElement(source.element, spec.element)) {
    throw new DatasetError(
      paths[0]!,
      `Cannot use ${paths[0]} as its rows have shapes ${JSON.stringify(source.element)} here but ` +
        `${
          JSON.stringify(spec.element)
        } where the dataset was opened first. Every process must see the same files.`,
    );
  }
  return source;
}

/** Options shared by the file-backed constructors. */
export interface ShardOptions {
  /**
   * Shuffle through a window of this many rows (shards in shuffled order, rows streamed through the
   * buffer) instead of one permutation of all rows. `null` is the global permutation.
   * @default null
   */
  shuffleBuffer?: number | null;
}

/** A dataset `fit`, `evaluate` and `predict` accept in place of x and y (Keras `fit(dataset, …)`). */
export class Dataset implements RowSource {
  readonly #source: RowSource;
  readonly #shardRows: number[];
  readonly #cleanup: (() => Promise<void>) | undefined;
  /** How other processes open the same rows; null when the rows live in this process only. */
  readonly spec: DatasetSpec | null;
  /** Rows of the windowed shuffle buffer, or null for a global permutation. */
  readonly shuffleBuffer: number | null;

  /** Use {@link fromArrays}, {@link fromNpz}, {@link fromCsv} or {@link fromGenerator}. */
  constructor(
    source: RowSource,
    opts: {
      spec: DatasetSpec | null;
      shardRows?: number[];
      shuffleBuffer?: number | null;
      cleanup?: () => Promise<void>;
    },
  ) {
    this.#source = source;
    this.spec = opts.spec;
    this.#shardRows = opts.shardRows ?? [source.length];
    this.shuffleBuffer = opts.shuffleBuffer ?? null;
    this.#cleanup = opts.cleanup;
    if (this.shuffleBuffer !== null) bufferedOrder([0], this.shuffleBuffer, 0, 0);
  }

  get length(): number {
    return this.#source.length;
  }

  get element(): ElementSpec {
    return this.#source.element;
  }

  /** The rows themselves when they are held in memory (shipped to workers), else null. */
  get memory(): Rows | null {
    return this.#source instanceof MemoryRows ? this.#source.rows : null;
  }

  /** Rows in each shard, in shard order. */
  get shardRows(): readonly number[] {
    return this.#shardRows;
  }

  gather(indices: ArrayLike<number>): Rows {
    return this.#source.gather(indices);
  }

  range(start: number, end: number): Rows {
    return this.#source.range(start, end);
  }

  /** The rows of epoch `epoch` in visiting order: a function of (seed, epoch) only. */
  order(seed: number, epoch: number, shuffle = true): Int32Array {
    if (!shuffle) return identityOrder(this.length);
    return this.shuffleBuffer === null
      ? globalOrder(this.length, seed, epoch)
      : bufferedOrder(this.#shardRows, this.shuffleBuffer, seed, epoch);
  }

  /** The same rows shuffled through a window of `bufferSize` rows (tf.data `shuffle(buffer_size)`). */
  shuffle(bufferSize: number): Dataset {
    return new Dataset(this.#source, {
      spec: this.spec,
      shardRows: this.#shardRows,
      shuffleBuffer: bufferSize,
      ...(this.#cleanup ? { cleanup: this.#cleanup } : {}),
    });
  }

  /**
   * The same rows, with `bufferSize` batches read ahead while a batch computes (tf.data
   * `prefetch(buffer_size)`), in this process and in every worker. File-backed datasets read one
   * batch ahead by default; `prefetch(0)` reads each batch when it is needed. Rows in memory need no
   * reading ahead: for them this changes nothing.
   *
   * @param bufferSize 0, 1 or 2: memory holds each batch read ahead.
   */
  prefetch(bufferSize: number): Dataset {
    checkPrefetch(bufferSize);
    return new Dataset(this.#source, {
      spec: this.spec && { ...this.spec, prefetch: bufferSize },
      shardRows: this.#shardRows,
      shuffleBuffer: this.shuffleBuffer,
      ...(this.#cleanup ? { cleanup: this.#cleanup } : {}),
    });
  }

  /** Batches read ahead while one computes: 0 for rows in memory. */
  get prefetchDepth(): number {
    return this.spec === null ? 0 : this.spec.prefetch ?? DEFAULT_PREFETCH;
  }

  /** Removes what the dataset wrote (the spill directory of {@link fromGenerator}); else nothing. */
  async close(): Promise<void> {
    await this.#cleanup?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function list<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** Rows from arrays in memory: one array (or a list, one per model input) and optional labels. */
export function fromArrays(x: RowArray | RowArray[], y: RowArray | null = null): Dataset {
  const inputs = list(x);
  const n = inputs[0]?.shape[0] ?? 0;
  [...inputs, ...(y ? [y] : [])].forEach((a, i) => {
    const size = a.shape.reduce((p, d) => p * d, 1);
    if (a.data.length !== size) {
      throw new RangeError(
        `Cannot use array ${i} as its shape [${a.shape}] needs ${size} values: it has ${a.data.length}`,
      );
    }
    if (a.shape[0] !== n) {
      throw new RangeError(
        `Data cardinality is ambiguous: array 0 has ${n} rows but array ${i} has ${a.shape[0]}. ` +
          "Pass the same number of rows in every array.",
      );
    }
  });
  return new Dataset(new MemoryRows({ inputs, y }), { spec: null });
}

/** Keys of {@link fromNpz}: the array of each input and of the labels in every shard. */
export interface NpzDatasetOptions extends ShardOptions {
  /** The key of the input array, or one key per model input. */
  x: string | string[];
  /** The key of the labels; omitted or null for data without labels (predict). */
  y?: string | null;
}

/**
 * Rows of `.npz` shards, read lazily by offset: `fromNpz("data/train-*.npz", { x: "x", y: "y" })`.
 * Shards are taken in name order; their arrays must be stored uncompressed (`numpy.savez`).
 *
 * @param pattern A path, a path whose file name has `*`/`?` wildcards, or a list of paths.
 * @throws {DatasetError} for an empty glob, a missing key, a compressed or truncated shard, or shards
 * whose arrays differ in dtype or row shape.
 */
export function fromNpz(pattern: string | string[], opts: NpzDatasetOptions): Promise<Dataset> {
  try {
    const paths = list(pattern).flatMap(expandShards);
    const keys = { inputs: list(opts.x), y: opts.y ?? null };
    const source = new NpzSource(paths, keys);
    const spec: DatasetSpec = { kind: "npz", files: source.shards, ...keys, element: source.element };
    return Promise.resolve(
      new Dataset(source, {
        spec,
        shardRows: source.shards.map((s) => s.rows),
        shuffleBuffer: opts.shuffleBuffer ?? null,
      }),
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Columns of {@link fromCsv}. */
export interface CsvDatasetOptions extends ShardOptions {
  /** The input's column names, or one list per model input. */
  x: string[] | string[][];
  /** The label column (rows of one value) or columns; omitted or null for no labels. */
  y?: string | string[] | null;
}

/**
 * Rows of CSV files with a header line, indexed in one pass and parsed on demand:
 * `fromCsv("data/part-*.csv", { x: ["a", "b"], y: "label" })`.
 *
 * @throws {DatasetError} for an empty glob, a missing column, or (when read) a non-numeric cell.
 */
export function fromCsv(pattern: string | string[], opts: CsvDatasetOptions): Promise<Dataset> {
  try {
    const paths = list(pattern).flatMap(expandShards);
    const inputs = opts.x.length > 0 && Array.isArray(opts.x[0])
      ? opts.x as string[][]
      : [opts.x as string[]];
    const y = opts.y === undefined || opts.y === null ? null : list(opts.y);
    const source = new CsvSource(paths, { inputs, y });
    const spec: DatasetSpec = { kind: "csv", files: source.files, inputs, y, element: source.element };
    return Promise.resolve(
      new Dataset(source, {
        spec,
        shardRows: source.files.map((f) => f.rows),
        shuffleBuffer: opts.shuffleBuffer ?? null,
      }),
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Options of {@link fromGenerator}. */
export interface GeneratorDatasetOptions extends ShardOptions {
  /**
   * Directory the batches are spilled to as `.npz` shards, kept after the dataset closes; workers on
   * other hosts need it on a shared volume.
   * @default a new temporary directory, removed by `close()`
   */
  dir?: string;
  /** @default 65536 rows per shard */
  rowsPerShard?: number;
}

/**
 * Rows of an async generator of batches, written once to `.npz` shards on disk (tf.data's
 * `cache(filename)`), so that epochs can shuffle them and workers can read them like any shards.
 * Memory holds at most one shard. A generator that throws leaves no shard behind.
 */
export async function fromGenerator(
  batches: AsyncIterable<Rows>,
  opts: GeneratorDatasetOptions = {},
): Promise<Dataset> {
  const rowsPerShard = opts.rowsPerShard ?? 65536;
  const own = opts.dir === undefined;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "shoal-dataset-" });
  const written: string[] = [];
  let pending: Rows[] = [];
  let held = 0;
  let first: ElementSpec | undefined;
  const flush = async () => {
    if (held === 0) return;
    const join2 = (arrays: RowArray[]): RowArray => {
      const n = arrays.reduce((s, a) => s + a.shape[0]!, 0);
      const data = new Float32Array(arrays.reduce((s, a) => s + a.data.length, 0));
      let o = 0;
      for (const a of arrays) (data.set(a.data, o), o += a.data.length);
      return { data, shape: [n, ...arrays[0]!.shape.slice(1)] };
    };
    const files: Record<string, [Uint8Array, { level: 0 }]> = {};
    pending[0]!.inputs.forEach((_, k) => {
      files[`x${k}.npy`] = [encodeNpy(join2(pending.map((b) => b.inputs[k]!))), { level: 0 }];
    });
    if (pending[0]!.y) files["y.npy"] = [encodeNpy(join2(pending.map((b) => b.y!))), { level: 0 }];
    const path = join(dir, `shard-${String(written.length).padStart(5, "0")}.npz`);
    await Deno.writeFile(`${path}.partial`, zipSync(files));
    await Deno.rename(`${path}.partial`, path);
    written.push(path);
    pending = [];
    held = 0;
  };
  try {
    let b = 0;
    for await (const batch of batches) {
      const element = {
        inputs: batch.inputs.map((a) => a.shape.slice(1)),
        y: batch.y?.shape.slice(1) ?? null,
      };
      first ??= element;
      if (!sameElement(first, element)) {
        throw new RangeError(
          `Cannot add batch ${b} of the generator as every batch must have the row shapes of batch 0: ` +
            `${JSON.stringify(first)}, found ${JSON.stringify(element)}`,
        );
      }
      fromArrays(batch.inputs, batch.y); // checks the batch's own row counts
      pending.push(batch);
      held += batch.inputs[0]?.shape[0] ?? 0;
      if (held >= rowsPerShard) await flush();
      b++;
    }
    await flush();
    if (written.length === 0) {
      throw new RangeError("Cannot build a dataset from a generator that yielded no rows");
    }
  } catch (error) {
    if (own) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else for (const p of written) await Deno.remove(p).catch(() => {});
    throw error;
  }
  const inputs = first!.inputs.map((_, k) => `x${k}`);
  const source = new NpzSource(written, { inputs, y: first!.y === null ? null : "y" });
  const spec: DatasetSpec = {
    kind: "npz",
    files: source.shards,
    inputs,
    y: first!.y === null ? null : "y",
    element: source.element,
  };
  return new Dataset(source, {
    spec,
    shardRows: source.shards.map((s) => s.rows),
    shuffleBuffer: opts.shuffleBuffer ?? null,
    ...(own ? { cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}) } : {}),
  });
}
