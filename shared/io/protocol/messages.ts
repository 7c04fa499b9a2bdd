/**
 * The messages between a coordinator and its workers: zod schemas of the wire headers (each header
 * travels with a binary body, see shared/io/nats/codec.ts; bodies.ts encodes and decodes the bodies).
 *
 * NATS is the control plane. Every subject starts with `shoal.<job>.`:
 *
 * | subject | from → to | pattern | header | body |
 * | --- | --- | --- | --- | --- |
 * | `shoal.<job>.hello` | coordinator → idle workers | publish, repeated until enough joined | {@link Hello} | — |
 * | `shoal.<job>.join` | worker → coordinator | request | {@link JoinRequest} → {@link JoinReply} | — |
 * | `shoal.<job>.ready` | worker → coordinator | request | {@link ReadyRequest} → {@link Ack} | — |
 * | `shoal.<job>.heartbeat` | coordinator → all workers | publish | {@link Heartbeat} | — |
 * | `shoal.<job>.end` | coordinator → all workers | publish | {@link EndHeader} | — |
 *
 * Bulk data goes over the data plane (shared/io/data_plane): each worker holds a `work` connection to
 * the coordinator, and a `sync` connection when the model's slices exchange partial results. The
 * coordinator announces the addresses and a per-job secret in the {@link JobSpec} it gives joined
 * workers only. Frames ({@link DataFrame}):
 *
 * | frame | connection | from → to | body |
 * | --- | --- | --- | --- |
 * | `hello` | work | worker → coordinator → worker | — (offers shared memory on one host) |
 * | `weights` | work | coordinator → worker | params ‖ state, f32 (or in shared memory) |
 * | `req` / `rep` | work | coordinator → worker → coordinator | a {@link WorkRequest}'s / {@link WorkReply}'s body |
 * | `leave` | work | coordinator → worker | — |
 * | `part` | sync | worker → coordinator | the slice's part, f32 |
 * | `gathered` / `abort` | sync | coordinator → workers | every slice's part in slice order, f32 / — |
 * | `wpart` | work, ring | coordinator → first worker → next worker … | a part of params ‖ state, f32 |
 * | `rchunk` | ring | worker → next worker | a chunk of a shard in transit, f32 |
 * | `abort` | work | coordinator → worker | — (stop the ring of that attempt) |
 * | `ping` / `pong` | work | coordinator → worker → coordinator | — |
 *
 * With `allreduce: "ring"` (see {@link AllreduceSchema}) workers also listen: each dials its next
 * neighbour (a `ring` connection, the same handshake and secret), the weights travel down the chain
 * in `wpart` frames, and each worker's train reply carries its reduced shard instead of its gradient.
 *
 * A worker that cannot reach the data plane (or a job with `transport: "nats"`) gets the same
 * messages through NATS instead:
 *
 * | subject | from → to | pattern | header | body |
 * | --- | --- | --- | --- | --- |
 * | `shoal.<job>.weights` | coordinator → workers | publish (server fan-out) | {@link WeightsHeader} | params ‖ state, f32 |
 * | `shoal.<job>.w.<worker>` | coordinator → one worker | request | {@link WorkRequest} → {@link WorkReply} | see bodies.ts |
 * | `shoal.<job>.part` | worker → coordinator | publish | {@link SyncHeader} `part` | the slice's part, f32 |
 * | `shoal.<job>.sync.<version>` | coordinator → workers | publish | {@link SyncHeader} `gathered` / `abort` | all parts, f32 |
 *
 * The slice exchange (`part`, `gathered`, `abort`) carries what the slices of one training step share
 * mid-computation (BatchNormalization's partial moments and gradient sums, so it normalizes over the
 * whole batch): the coordinator gathers every slice's part of one exchange and sends all of them to
 * each slice. It sends `abort` when an attempt at the step fails, so slices waiting for a lost
 * worker's part stop and take the retry.
 *
 * @module
 */
import { z } from "npm:zod@4.6.7";
import { FloatEncodingSchema } from "../nats/float_encoding.ts";
import { DatasetSpecSchema } from "../dataset/mod.ts";

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
  /** Slice-exchange parts, worker → coordinator. */
  part: string;
  /** The gathered parts and aborts of one step attempt (weights version), coordinator → workers. */
  sync: (version: number) => string;
  /** Every step attempt's `sync`, to subscribe to. */
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
    part: `${base}.part`,
    sync: (version: number) => `${base}.sync.${version}`,
    syncAll: `${base}.sync.*`,
  };
}

/** Subject an idle worker listens on for any job's hello. */
export const ANY_HELLO = "shoal.*.hello";

/** A coordinator looking for workers. */
export const Hello = z.object({ job: JobIdSchema, wanted: z.int().positive() });

/**
 * How bulk data (weights, gradients, slice exchanges, datasets) travels: `direct` over the data plane
 * (a worker that cannot reach it is refused), `nats` through the NATS server, `auto` direct where the
 * worker reaches the data plane and NATS otherwise.
 */
export const TransportSchema = z.enum(["auto", "direct", "nats"]);
export type Transport = z.output<typeof TransportSchema>;

/**
 * How gradients are reduced: `star` at the coordinator (it receives every worker's gradient and sends
 * every worker the weights), `ring` among the workers (a reduce-scatter, then one shard each to the
 * coordinator, and the weights down a chain of workers), `auto` picks per step (coordinator/distributed/
 * allreduce.ts).
 */
export const AllreduceSchema = z.enum(["star", "ring", "auto"]);
export type Allreduce = z.output<typeof AllreduceSchema>;

/** A worker of a ring: its name and where it listens for its previous neighbour. */
export const RingPeer = z.object({ name: WorkerNameSchema, addresses: z.array(z.string()).min(1) });
export type RingPeer = z.output<typeof RingPeer>;

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
  /** A loss name, or a loss with its options (shared/model/losses.ts `LossSpec`). */
  loss: z.union([
    z.string(),
    z.object({ name: z.string(), delta: z.number().optional(), labelSmoothing: z.number().optional() }),
  ]),
  metrics: z.array(z.object({
    name: z.string(),
    fn: z.string(),
    k: z.int().positive().optional(),
    threshold: z.number().optional(),
    numThresholds: z.int().positive().optional(),
  })),
  seed: z.int(),
  /** Labels carry a trailing sample-weight column (shared/model/engine.ts `EngineSpec.weightedLabels`). */
  weightedLabels: z.object({ shape: z.array(z.int().nonnegative()) }).optional(),
  /** Backend the coordinator asks for; a worker's own `--backend` wins. */
  backend: z.string(),
  gradEncoding: FloatEncodingSchema,
  /** How bulk data travels: see {@link TransportSchema}. */
  transport: TransportSchema,
  /** Where the data plane listens and its secret; absent with `transport: "nats"`. */
  dataPlane: z.object({ addresses: z.array(z.string()).min(1), secret: z.string().regex(/^[0-9a-f]{64}$/) })
    .optional(),
  /** How gradients are reduced; a worker listens for ring neighbours unless it is `star`. @default "star" */
  allreduce: AllreduceSchema.optional(),
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
  /** How this worker's bulk data travels. */
  link: z.enum(["direct", "nats"]),
  /** Why the link is NATS when the job offered a data plane. */
  linkNote: z.string().optional(),
  /** Milliseconds of one forward pass over {@link warmupRows} rows, measured after setup. */
  warmupMs: z.number().nonnegative(),
  warmupRows: z.int().positive(),
  /** Milliseconds of the worker's join request round trip. */
  rttMs: z.number().nonnegative(),
  /** Where the worker listens for its ring neighbour, when the job reduces on a ring. */
  ringAddresses: z.array(z.string()).min(1).optional(),
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
    /** Each input's element type, then y's (bodies.ts `encodeDataset`). */
    dtypes: z.array(z.enum(["float32", "uint8"])),
    /** True when the body is empty and only a cache hit is asked for. */
    probe: z.boolean(),
    /** The body holds bytes `offset..offset + body length` of `total` (the dataset travels in parts). */
    offset: z.int().nonnegative(),
    total: z.int().nonnegative(),
  }),
  z.object({
    /** A dataset the worker opens itself from files it can see; answered like a cached `data`. */
    kind: z.literal("files"),
    job: JobIdSchema,
    name: z.string(),
    spec: DatasetSpecSchema,
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
    /** The attempt's slices exchange in the shared area of the coordinator's host, not through it. */
    sharedExchange: z.boolean().optional(),
    /**
     * The body's last `ahead` row indices are not this slice's: they are the rows this worker's slice
     * of the next step will likely take, for a file-backed dataset to read while this slice computes.
     */
    ahead: z.int().nonnegative().optional(),
    /**
     * The slices reduce on the ring of the weights' chain (slice k is ring rank k): the worker scales
     * its gradient by its rows ÷ `total`, and replies with its reduced shard.
     */
    ring: z.object({ total: z.int().positive() }).optional(),
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

/**
 * A loss or metric sum. JSON has no NaN or infinity (`JSON.stringify` writes `null`), and a diverged
 * model's sums are exactly those, so `null` reads as NaN: the reply stays valid and the coordinator's
 * non-finite check decides (recompute, then accept with a warning), where a rejected frame would drop
 * the worker and retry the step forever.
 */
const Sum = z.number().nullable().transform((v) => v ?? Number.NaN);

const EvalSums = z.object({
  count: z.int().nonnegative(),
  lossSum: Sum,
  metricSums: z.array(Sum),
  regLoss: Sum,
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
    lossSum: Sum,
    metricSums: z.array(Sum),
    regLoss: Sum,
    encoding: FloatEncodingSchema,
    gradLength: z.int().nonnegative(),
    batchStats: z.array(z.object({ layer: z.string(), channels: z.int().nonnegative() })),
    /**
     * Sparse gradients' squares (shared/model/grad_squares.ts `GradSquares`), after the statistics:
     * per table at `offset` of `size` elements in rows of `rowSize`, its `rows` looked-up row ids
     * (i32, ascending) then their squares (`rows × rowSize` f32).
     */
    gradSquares: z.array(z.object({
      offset: z.int().nonnegative(),
      size: z.int().nonnegative(),
      rowSize: z.int().positive(),
      rows: z.int().nonnegative(),
    })).optional(),
    computeMs: z.number(),
    /** A ring reply: the body holds the reduced values `[start, end)` of the step's gradient. */
    shard: z.object({ start: z.int().nonnegative(), end: z.int().nonnegative() }).optional(),
    /** Milliseconds of the ring's reduce-scatter on this worker. */
    ringMs: z.number().optional(),
    /**
     * The worker found every value of its float32 gradient finite where it computed it (star replies).
     * The coordinator takes its word: the check guards against the worker's arithmetic (a diverging
     * model), and the bytes in between are the transport's to protect (TCP's checksums, TLS, NATS,
     * shared memory).
     */
    gradsFinite: z.literal(true).optional(),
  }),
  z.object({ kind: z.literal("eval"), job: z.string(), worker: z.string(), chunks: z.array(EvalSums) }),
  z.object({
    kind: z.literal("predict"),
    job: z.string(),
    worker: z.string(),
    length: z.int().nonnegative(),
  }),
  z.object({ kind: z.literal("leave"), job: z.string(), worker: z.string() }),
  z.object({
    kind: z.literal("error"),
    job: z.string(),
    worker: z.string(),
    error: z.string(),
    /**
     * The ring neighbour this worker could not dial (its ring port blocked or unrouted): the job cannot
     * reduce on a ring with that worker, and runs the step on the star.
     */
    ringUnreachable: z.object({
      worker: WorkerNameSchema,
      addresses: z.array(z.string()),
      reason: z.string(),
    })
      .optional(),
  }),
]);

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

/**
 * The job is over: workers leave it. `reason` "stopped" means the run did not finish (a signal, an
 * error) and may be rerun under the same job id: a worker bound to the job waits for that rerun.
 */
export const EndHeader = z.object({ job: JobIdSchema, reason: z.string() });

/** Slice-exchange messages on NATS: a slice's part of exchange `call` of an attempt, all parts gathered, or the attempt's abort. */
export const SyncHeader = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("part"),
    job: JobIdSchema,
    worker: WorkerNameSchema,
    version: z.int().nonnegative(),
    slice: z.int().nonnegative(),
    slices: z.int().positive(),
    call: z.int().nonnegative(),
  }),
  z.object({
    kind: z.literal("gathered"),
    job: JobIdSchema,
    version: z.int().nonnegative(),
    slices: z.int().positive(),
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

/** A region of shared memory (shared/io/data_plane/shared_memory.ts): its file and size. */
const SharedRegionSpec = z.object({
  path: z.string().regex(/^\/dev\/shm\/shoal-[A-Za-z0-9_-]+$/),
  bytes: z.int().positive(),
});

/** Data-plane frames; see the module table. */
export const DataFrame = z.discriminatedUnion("t", [
  /**
   * The first frame each way on a `work` connection. A worker on the coordinator's host offers the
   * region it writes its gradients into; the coordinator answers with the region it writes weights
   * into. Both present: bodies of weights and train replies travel there, frames carry none.
   */
  z.object({
    t: z.literal("hello"),
    shm: SharedRegionSpec.optional(),
    /**
     * The coordinator's answer may add the slice-exchange area of the workers on its host
     * (shared_exchange.ts); the worker's acknowledgement says `mapped` when it mapped it.
     */
    sync: z.union([SharedRegionSpec, z.literal("mapped")]).optional(),
  }),
  /** Weights in the body, or in slot `shm` of the coordinator's region (params ‖ state). */
  WeightsHeader.extend({ t: z.literal("weights"), shm: z.int().nonnegative().optional() }),
  /** A request; `shmSlot`: the slot of its region the worker writes a train reply's body into. */
  z.object({
    t: z.literal("req"),
    id: z.int().nonnegative(),
    req: WorkRequest,
    shmSlot: z.int().min(0).max(1).optional(),
  }),
  /** A reply; its body in the frame, or the first `shmBytes` bytes of slot `shmSlot` of the worker's region. */
  z.object({
    t: z.literal("rep"),
    id: z.int().nonnegative(),
    rep: WorkReply,
    shmBytes: z.int().nonnegative().optional(),
    shmSlot: z.int().min(0).max(1).optional(),
  }),
  /** The worker leaves: dropped (it may join again), or the job `ended`. */
  z.object({ t: z.literal("leave"), reason: z.string(), ended: z.boolean() }),
  z.object({
    t: z.literal("part"),
    version: z.int().nonnegative(),
    slice: z.int().nonnegative(),
    slices: z.int().positive(),
    call: z.int().nonnegative(),
  }),
  z.object({
    t: z.literal("gathered"),
    version: z.int().nonnegative(),
    slices: z.int().positive(),
    call: z.int().nonnegative(),
  }),
  z.object({ t: z.literal("abort"), version: z.int().nonnegative(), reason: z.string() }),
  /**
   * Floats `offset …` of weights `version` (params ‖ state), down the chain: the first part names the
   * chain (ring order), whose first worker hears it from the coordinator and each forwards to the next.
   */
  WeightsHeader.extend({
    t: z.literal("wpart"),
    offset: z.int().nonnegative(),
    chain: z.array(RingPeer).min(1).optional(),
  }),
  /** Chunk `chunk` of the shard worker → `to` sends in round `round` of the ring of attempt `version`. */
  z.object({
    t: z.literal("rchunk"),
    version: z.int().nonnegative(),
    to: WorkerNameSchema,
    round: z.int().nonnegative(),
    chunk: z.int().nonnegative(),
  }),
  z.object({ t: z.literal("ping"), id: z.int().nonnegative() }),
  z.object({ t: z.literal("pong"), id: z.int().nonnegative() }),
]);
export type DataFrame = z.output<typeof DataFrame>;
