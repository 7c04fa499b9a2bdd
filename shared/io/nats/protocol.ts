/**
 * The messages between a coordinator and its workers, as zod schemas of the wire headers (codec.ts
 * carries each header with a binary body). Every subject starts with `shoal.<job>.`.
 *
 * | subject | from → to | pattern | header | body |
 * | --- | --- | --- | --- | --- |
 * | `shoal.<job>.hello` | coordinator → idle workers | publish, repeated until enough joined | {@link Hello} | — |
 * | `shoal.<job>.join` | worker → coordinator | request | {@link JoinRequest} → {@link JoinReply} | — |
 * | `shoal.<job>.ready` | worker → coordinator | request | {@link ReadyRequest} → {@link Ack} | — |
 * | `shoal.<job>.weights` | coordinator → all workers | publish (server fan-out) | {@link WeightsHeader} | params ‖ state, f32 |
 * | `shoal.<job>.w.<worker>` | coordinator → one worker | request | {@link WorkRequest} → {@link WorkReply} | see below |
 * | `shoal.<job>.end` | coordinator → all workers | publish | {@link EndHeader} | — |
 * | `shoal.<job>.sync.<version>` | worker → the step's workers; coordinator → them to abort | publish | {@link SyncHeader} | the slice's part, f32 |
 *
 * Work request bodies: `data`: every input array then y, f32, rows first; `train`: the slice's row
 * indices, i32. Reply bodies: `train`: the gradient in `encoding`, then per BatchNorm layer its mean
 * and variance (f32); `predict`: the outputs, f32. A worker that fails answers `{ kind: "error" }`.
 *
 * `sync` carries what the slices of one training step share mid-computation (BatchNormalization's
 * partial moments and gradient sums, so it normalizes over the whole batch): every slice publishes its
 * part of each exchange and reads all the others'. The coordinator publishes `abort` there when an
 * attempt at the step fails, so slices waiting for a lost worker's part stop and take the retry.
 *
 * @module
 */
import { z } from "npm:zod@4.6.7";
import { FloatEncodingSchema } from "./float_encoding.ts";

/** A job id: one subject token (letters, digits, `_`, `-`). */
export const JobIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
/** A worker name: one subject token. */
export const WorkerNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** Subjects of one job. */
export function jobSubjects(job: string): {
  hello: string;
  join: string;
  ready: string;
  weights: string;
  end: string;
  heartbeat: string;
  worker: (name: string) => string;
  /** The slice exchange of one step attempt (weights version). */
  sync: (version: number) => string;
  /** Every step's slice exchange, to subscribe to. */
  syncAll: string;
} {
  const base = `shoal.${job}`;
  return {
    hello: `${base}.hello`,
    join: `${base}.join`,
    ready: `${base}.ready`,
    weights: `${base}.weights`,
    end: `${base}.end`,
    heartbeat: `${base}.heartbeat`,
    worker: (name: string) => `${base}.w.${name}`,
    sync: (version: number) => `${base}.sync.${version}`,
    syncAll: `${base}.sync.*`,
  };
}

/** Subject an idle worker listens on for any job's hello. */
export const ANY_HELLO = "shoal.*.hello";

/** A coordinator looking for workers. */
export const Hello = z.object({ job: JobIdSchema, wanted: z.int().positive() });

/** A worker offering itself to a job. */
export const JoinRequest = z.object({
  job: JobIdSchema,
  worker: WorkerNameSchema,
  pid: z.int(),
  host: z.string(),
});

const LayoutSpec = z.array(z.object({ path: z.string(), shape: z.array(z.int().nonnegative()) }));

/** Everything a generic worker needs to run a job. */
export const JobSpec = z.object({
  job: JobIdSchema,
  /** Keras 3 model config (`Network.toConfig()`). */
  model: z.record(z.string(), z.unknown()),
  loss: z.string(),
  metrics: z.array(z.object({ name: z.string(), fn: z.string() })),
  seed: z.int(),
  /** Backend the coordinator asks for; a worker's own `--backend` wins. */
  backend: z.string(),
  gradEncoding: FloatEncodingSchema,
});

/** Accepted (with the job) or refused (with why). */
export const JoinReply = z.object({
  accepted: z.boolean(),
  reason: z.string().optional(),
  spec: JobSpec.optional(),
});

/** The worker's model manifest after rebuilding the network, or why it could not. */
export const ReadyRequest = z.object({
  job: JobIdSchema,
  worker: WorkerNameSchema,
  backend: z.string(),
  device: z.string(),
  params: LayoutSpec,
  state: LayoutSpec,
  error: z.string().optional(),
});

/** An empty acknowledgement. */
export const Ack = z.object({ ok: z.boolean() });

/** Weights of one version; every request names the version it needs. */
export const WeightsHeader = z.object({
  job: JobIdSchema,
  version: z.int().nonnegative(),
  paramsLength: z.int().nonnegative(),
  stateLength: z.int().nonnegative(),
});

const Shape = z.array(z.int().nonnegative());

/** Work for one worker. */
export const WorkRequest = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("data"),
    job: JobIdSchema,
    /** Name the pool uses for the dataset ("train", "val"). */
    name: z.string(),
    /** SHA-256 (hex) of the shapes and bytes. */
    hash: z.string(),
    inputs: z.array(Shape),
    y: Shape.nullable(),
    /** True when the body is empty and only a cache hit is asked for. */
    probe: z.boolean(),
  }),
  z.object({
    kind: z.literal("train"),
    job: JobIdSchema,
    data: z.string(),
    version: z.int().nonnegative(),
    step: z.int().nonnegative(),
    rowOffset: z.int().nonnegative(),
    /** This slice's place among the step's slices, for the slice exchange. */
    slice: z.int().nonnegative(),
    slices: z.int().positive(),
    encoding: FloatEncodingSchema,
  }),
  z.object({
    kind: z.enum(["eval", "predict"]),
    job: JobIdSchema,
    data: z.string(),
    version: z.int().nonnegative(),
    batchSize: z.int().positive(),
    /** First and end (exclusive) chunk of `batchSize` rows. */
    first: z.int().nonnegative(),
    end: z.int().nonnegative(),
  }),
  z.object({ kind: z.literal("leave"), job: JobIdSchema }),
]);

const EvalSums = z.object({
  count: z.int().nonnegative(),
  lossSum: z.number(),
  metricSums: z.array(z.number()),
  regLoss: z.number(),
});

/** A worker's answer to a {@link WorkRequest}. */
export const WorkReply = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("data"), job: z.string(), worker: z.string(), cached: z.boolean() }),
  z.object({
    kind: z.literal("train"),
    job: z.string(),
    worker: z.string(),
    step: z.int(),
    count: z.int().nonnegative(),
    lossSum: z.number(),
    metricSums: z.array(z.number()),
    regLoss: z.number(),
    encoding: FloatEncodingSchema,
    gradLength: z.int().nonnegative(),
    batchStats: z.array(z.object({ layer: z.string(), channels: z.int().nonnegative() })),
    computeMs: z.number(),
  }),
  z.object({ kind: z.literal("eval"), job: z.string(), worker: z.string(), chunks: z.array(EvalSums) }),
  z.object({
    kind: z.literal("predict"),
    job: z.string(),
    worker: z.string(),
    length: z.int().nonnegative(),
  }),
  z.object({ kind: z.literal("leave"), job: z.string(), worker: z.string() }),
  z.object({ kind: z.literal("error"), job: z.string(), worker: z.string(), error: z.string() }),
]);

/** The job is over: workers leave it. */
/**
 * The coordinator's heartbeat, every `intervalMs`: a worker not named in `members` leaves the job (and
 * may join again); a worker that hears none for `misses` intervals while connected leaves it as vanished.
 */
export const Heartbeat = z.object({
  job: JobIdSchema,
  /** Last step started (0 before the first). */
  step: z.int().nonnegative(),
  /** Live and joining workers. */
  members: z.array(WorkerNameSchema),
  intervalMs: z.number().positive(),
  misses: z.int().positive(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const EndHeader = z.object({ job: JobIdSchema, reason: z.string() });

/** One slice's part of exchange number `call` of a step attempt, or the attempt's abort. */
export const SyncHeader = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("part"),
    job: JobIdSchema,
    version: z.int().nonnegative(),
    slice: z.int().nonnegative(),
    call: z.int().nonnegative(),
  }),
  z.object({
    kind: z.literal("abort"),
    job: JobIdSchema,
    version: z.int().nonnegative(),
    reason: z.string(),
  }),
]);
export type SyncHeader = z.output<typeof SyncHeader>;

export type Hello = z.output<typeof Hello>;
export type JoinRequest = z.output<typeof JoinRequest>;
export type JobSpec = z.output<typeof JobSpec>;
export type JoinReply = z.output<typeof JoinReply>;
export type ReadyRequest = z.output<typeof ReadyRequest>;
export type WeightsHeader = z.output<typeof WeightsHeader>;
export type WorkRequest = z.output<typeof WorkRequest>;
export type WorkReply = z.output<typeof WorkReply>;
export type EndHeader = z.output<typeof EndHeader>;
