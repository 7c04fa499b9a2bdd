import { join } from "node:path";
import { z } from "npm:zod@4.6.7";
import { Callback } from "./callback.ts";
import { writeFileAtomic } from "../io/keras/mod.ts";
import type { BackupReason, FitFingerprint, RunAccess, RunBackup, TrainingPosition } from "./training_run.ts";

/**
 * A callback whose state survives a resume: `getState` returns plain data (numbers, strings, booleans,
 * null, arrays, objects and `Float32Array`s) and `setState` takes it back after `onTrainBegin`.
 */
export interface StatefulCallback {
  getState(): unknown;
  setState(state: unknown): void;
}

/** Whether a callback implements {@link StatefulCallback}. */
export function isStateful(c: unknown): c is StatefulCallback & Callback {
  return c instanceof Callback && typeof (c as Partial<StatefulCallback>).getState === "function" &&
    typeof (c as Partial<StatefulCallback>).setState === "function";
}

/** Options of {@link BackupAndRestore}. */
export interface BackupAndRestoreOptions {
  /** Directory holding the backup file; created when missing. */
  backupDir: string;
  /**
   * `"epoch"`: back up at each epoch end. N: also after every step that brings the optimizer's
   * iteration count to a multiple of N (beyond Keras, which then skips epoch ends).
   * @default {"epoch"}
   */
  saveFreq?: "epoch" | number;
  /**
   * Delete the backup when training ends normally (not when it is interrupted).
   * @default {true}
   */
  deleteCheckpoint?: boolean;
}

/** File name of the backup inside `backupDir`. */
export const BACKUP_FILE = "latest.backup";
const MAGIC = "SHOALBK1";

const Position = z.strictObject({
  epoch: z.number().int().nonnegative(),
  batch: z.number().int().nonnegative(),
  stopTraining: z.boolean(),
  seen: z.number().int().nonnegative(),
  lossSum: z.unknown(),
  regSum: z.unknown(),
  metricSums: z.array(z.unknown()),
  runSamples: z.number().int().nonnegative(),
  runSteps: z.number().int().nonnegative(),
});

const Header = z.strictObject({
  format: z.literal("shoal-backup"),
  version: z.literal(1),
  position: Position,
  fit: z.strictObject({
    batchSize: z.number().int().positive(),
    stepsPerEpoch: z.number().int().nonnegative(),
    samples: z.number().int().nonnegative(),
    seed: z.number(),
    shuffle: z.boolean(),
  }),
  params: z.number().int().nonnegative(),
  state: z.number().int().nonnegative(),
  optimizer: z.strictObject({
    iterations: z.number().int().nonnegative(),
    learningRate: z.unknown(),
    slots: z.array(z.number().int().nonnegative()),
  }),
  callbacks: z.array(z.strictObject({ key: z.string(), state: z.unknown() })),
  arrays: z.array(z.strictObject({ offset: z.number().int().nonnegative(), length: z.number().int() })),
  checksum: z.number().int().nonnegative(),
});

/** What a backup file holds, decoded. */
export interface BackupContents {
  position: TrainingPosition;
  fit: FitFingerprint;
  params: Float32Array;
  state: Float32Array;
  optimizer: { iterations: number; learningRate: number; slots: Float32Array[] };
  /** Callback states by key (`<class name>#<index among stateful callbacks>`). */
  callbacks: Map<string, unknown>;
}

/**
 * Backs up and restores the training run (Keras `BackupAndRestore`), exactly: weights (BatchNorm
 * statistics included), optimizer iterations, slots and learning rate, the epoch and batch reached
 * with the epoch's running loss and metric sums, and the states of callbacks implementing
 * {@link StatefulCallback} (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, History). A run killed
 * at any point and restarted with the same callbacks and data ends with the same weights, bit for bit,
 * as one that was never interrupted.
 *
 * As in Keras, a `fit` that finds a backup in `backupDir` resumes from it. Each backup replaces the
 * previous one atomically (written to a temporary file, synced, then renamed), so a crash while
 * writing leaves the previous backup usable.
 *
 * @example
 * ```ts
 * await model.fit(x, y, { epochs: 10, callbacks: [new BackupAndRestore({ backupDir: "/tmp/backup" })] });
 * ```
 */
export class BackupAndRestore extends Callback implements RunBackup {
  readonly backupDir: string;
  readonly saveFreq: "epoch" | number;
  readonly deleteCheckpoint: boolean;
  /** The position of the last restore, or null when the last `fit` started afresh. */
  restoredFrom: TrainingPosition | null = null;
  #writes = 0;

  constructor(options: BackupAndRestoreOptions) {
    super();
    if (typeof options?.backupDir !== "string" || options.backupDir === "") {
      throw new TypeError(
        `BackupAndRestore needs a backupDir: received ${String(options?.backupDir)}. Pass e.g. "/tmp/backup"`,
      );
    }
    const saveFreq = options.saveFreq ?? "epoch";
    if (saveFreq !== "epoch" && !(Number.isInteger(saveFreq) && saveFreq > 0)) {
      throw new RangeError(
        `Invalid value for argument saveFreq. Received: saveFreq=${String(saveFreq)}. ` +
          'Expected either "epoch" or a positive integer number of batches',
      );
    }
    this.backupDir = options.backupDir;
    this.saveFreq = saveFreq;
    this.deleteCheckpoint = options.deleteCheckpoint ?? true;
  }

  /** Path of the backup file. */
  get backupPath(): string {
    return join(this.backupDir, BACKUP_FILE);
  }

  /** Backups written since this object was created. */
  get writes(): number {
    return this.#writes;
  }

  async restoreRun(run: RunAccess): Promise<TrainingPosition | null> {
    this.restoredFrom = null;
    const saved = await readBackup(this.backupDir);
    if (saved === null) return null;
    const where = `The backup ${this.backupPath}`;
    const fix = `Resume with the same model, data and fit options, or delete ${this.backupDir} to start over`;
    for (const key of Object.keys(saved.fit) as (keyof FitFingerprint)[]) {
      if (saved.fit[key] !== run.fit[key]) {
        throw new Error(
          `${where} was written by a fit with ${key}=${saved.fit[key]}, but this fit has ${key}=${
            run.fit[key]
          }. ${fix}`,
        );
      }
    }
    if (saved.params.length !== run.params.length || saved.state.length !== run.state.length) {
      throw new Error(
        `${where} holds ${saved.params.length} trainable and ${saved.state.length} non-trainable weights, ` +
          `but this model has ${run.params.length} and ${run.state.length}. ${fix}`,
      );
    }
    const stateful = statefulCallbacks(run.callbacks);
    const savedKeys = [...saved.callbacks.keys()].join(", ") || "none";
    const ourKeys = [...stateful.keys()].join(", ") || "none";
    if (savedKeys !== ourKeys) {
      throw new Error(
        `${where} holds the states of the callbacks [${savedKeys}], but this fit has [${ourKeys}]. ${fix}`,
      );
    }
    run.params.set(saved.params);
    run.state.set(saved.state);
    run.optimizer.iterations = saved.optimizer.iterations;
    run.optimizer.slots = saved.optimizer.slots;
    if (run.optimizer.schedule === null || run.optimizer.schedule === undefined) {
      run.optimizer.learningRate = saved.optimizer.learningRate;
    }
    for (const [key, callback] of stateful) callback.setState(saved.callbacks.get(key));
    this.restoredFrom = saved.position;
    return saved.position;
  }

  async backupRun(run: RunAccess, position: TrainingPosition, reason: BackupReason): Promise<void> {
    const due = reason === "interrupt" || reason === "epoch" ||
      (this.saveFreq !== "epoch" && run.optimizer.iterations % this.saveFreq === 0);
    if (!due) return;
    await writeBackup(this.backupDir, run, position);
    this.#writes++;
  }

  override async onTrainEnd(): Promise<void> {
    if (!this.deleteCheckpoint) return;
    await Deno.remove(this.backupPath).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

function statefulCallbacks(callbacks: readonly Callback[]): Map<string, StatefulCallback> {
  const out = new Map<string, StatefulCallback>();
  for (const c of callbacks) if (isStateful(c)) out.set(`${c.constructor.name}#${out.size}`, c);
  return out;
}

/** Turns a state into JSON-safe data, moving `Float32Array`s into `arrays` and keeping non-finite numbers. */
function encode(value: unknown, arrays: Float32Array[]): unknown {
  if (value instanceof Float32Array) {
    arrays.push(value);
    return { $f32: arrays.length - 1 };
  }
  if (typeof value === "number") return Number.isFinite(value) ? value : { $num: String(value) };
  if (Array.isArray(value)) return value.map((v) => encode(v, arrays));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v, arrays)]));
  }
  if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    throw new TypeError(`Cannot back up a callback state holding a ${typeof value}: use plain data`);
  }
  return value;
}

function decode(value: unknown, arrays: Float32Array[]): unknown {
  if (Array.isArray(value)) return value.map((v) => decode(v, arrays));
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.$f32 === "number") return arrays[o.$f32];
    if (typeof o.$num === "string") return Number(o.$num);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, decode(v, arrays)]));
  }
  return value;
}

/** FNV-1a over 32-bit words: detects a truncated or damaged file. */
function checksum(words: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * Writes the run's backup file atomically: a temporary file in the same directory, synced, then
 * renamed over the previous backup.
 */
export async function writeBackup(dir: string, run: RunAccess, position: TrainingPosition): Promise<void> {
  const arrays: Float32Array[] = [run.params, run.state];
  const slots = run.optimizer.slots.map((s) => arrays.push(s) - 1);
  const callbacks = [...statefulCallbacks(run.callbacks)].map(([key, c]) => ({
    key,
    state: encode(c.getState(), arrays),
  }));
  let offset = 0;
  const table = arrays.map((a) => {
    const entry = { offset, length: a.length };
    offset += a.length;
    return entry;
  });
  const data = new Float32Array(offset);
  arrays.forEach((a, i) => data.set(a, table[i]!.offset));
  const header = {
    format: "shoal-backup",
    version: 1,
    position: encode(position, []),
    fit: run.fit,
    params: run.params.length,
    state: run.state.length,
    optimizer: {
      iterations: run.optimizer.iterations,
      learningRate: encode(run.optimizer.learningRate, []),
      slots,
    },
    callbacks,
    arrays: table,
    checksum: checksum(new Uint32Array(data.buffer)),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerEnd = 12 + json.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const bytes = new Uint8Array(dataStart + data.byteLength);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(8, json.length, true);
  bytes.set(json, 12);
  bytes.set(new Uint8Array(data.buffer), dataStart);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, BACKUP_FILE), bytes);
}

/** Reads the backup file in `dir`; null when there is none. Throws, naming the file, when it is damaged. */
export async function readBackup(dir: string): Promise<BackupContents | null> {
  const path = join(dir, BACKUP_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const damaged = (why: string) =>
    new Error(`Cannot restore from ${path} as the file is damaged (${why}). Delete it to start over`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw damaged(`it does not start with ${MAGIC}`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const dataStart = Math.ceil((12 + headerLength) / 4) * 4;
  if (dataStart > bytes.length) throw damaged("it is shorter than its header says");
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  } catch (e) {
    throw damaged(`its header is not JSON: ${(e as Error).message}`);
  }
  const parsed = Header.safeParse(raw);
  if (!parsed.success) throw damaged(parsed.error.issues.map((i) => i.path.join(".")).join(", "));
  const header = parsed.data;
  const aligned = bytes.slice(dataStart);
  const words = new Uint32Array(aligned.buffer, 0, Math.floor(aligned.length / 4));
  const data = new Float32Array(aligned.buffer, 0, words.length);
  const end = header.arrays.reduce((n, a) => Math.max(n, a.offset + a.length), 0);
  if (end !== data.length || checksum(words) !== header.checksum) {
    throw damaged("its data does not match its checksum");
  }
  const arrays = header.arrays.map((a) => data.slice(a.offset, a.offset + a.length));
  const position = decode(header.position, []) as TrainingPosition;
  return {
    position,
    fit: header.fit,
    params: arrays[0]!,
    state: arrays[1]!,
    optimizer: {
      iterations: header.optimizer.iterations,
      learningRate: decode(header.optimizer.learningRate, []) as number,
      slots: header.optimizer.slots.map((i) => arrays[i]!),
    },
    callbacks: new Map(header.callbacks.map((c) => [c.key, decode(c.state, arrays)])),
  };
}
