/**
 * The training job of `deno task train`: its options (CLI flags over a YAML/JSON config file over
 * defaults), validated with zod, and the built-in example it runs. Relative paths, on the command line
 * or in a config file, are taken from the folder the user ran the command in (see shared/io/paths.ts),
 * and the job holds them as absolute paths.
 */
import { parseArgs } from "node:util";
import { parse as parseYaml } from "npm:yaml@2.9.1";
import { z } from "npm:zod@4.6.7";
import {
  assertNoSecretInUrl,
  NATS_AUTH_FLAG_OPTIONS,
  NATS_AUTH_FLAGS,
  NATS_AUTH_USAGE,
} from "../shared/io/nats/mod.ts";
import { userCwd, userPath } from "../shared/io/paths.ts";
import { JobIdSchema } from "../shared/io/protocol/mod.ts";
import { BACKEND_REQUESTS, type BackendRequest, didYouMean } from "../shared/model/mod.ts";

/**
 * NATS credentials of the coordinator as a config file gives them: file paths and a user name only,
 * never a secret inline (environment variables SHOAL_NATS_* complete them; see shared/io/nats/auth.ts).
 */
export const NatsAuthConfigSchema = z.strictObject({
  user: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
  credsFile: z.string().min(1).optional(),
  nkeySeedFile: z.string().min(1).optional(),
  tlsCa: z.string().min(1).optional(),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
});

/** The built-in examples `--example` runs; `fashion_mnist` (the examples' spelling) is accepted too. */
export const JOB_EXAMPLES = ["fashion-mnist"] as const;

// Each message completes "Cannot run the job as <option> …" (see formatIssues).
const number = () => z.number({ error: "must be a number" });
const int = (min: number) => number().int("must be a whole number").min(min, `must be ≥ ${min}`);
const fraction = () => number().gt(0, "must be > 0 and < 1").lt(1, "must be > 0 and < 1");
const path = () => z.string({ error: "must be a path" }).min(1, "must be a path");

/** A job, as a config file may give it. Unknown keys are errors. */
export const JobSchema = z.strictObject({
  example: z.preprocess(
    (v) => (typeof v === "string" ? v.replaceAll("_", "-") : v),
    z.enum(JOB_EXAMPLES, { error: `must be one of ${JOB_EXAMPLES.join(", ")}` }),
  ).default("fashion-mnist"),
  epochs: int(1).default(50),
  batchSize: int(1).default(64),
  /** Absent: 0.15 of the built-in data; never with trainData (rows in files are not split). */
  validationSplit: fraction().optional(),
  learningRate: number().gt(0, "must be > 0").default(0.001),
  patience: int(0).default(5),
  workers: int(0).default(0),
  gpus: z.array(int(0), { error: "must be a list of GPU ids, e.g. [0, 1]" }).optional(),
  nats: z.string().url("must be a URL such as nats://host:4222").optional(),
  natsAuth: NatsAuthConfigSchema.optional(),
  jobId: z.string({ error: "must be a job id" }).refine(
    (id) => JobIdSchema.safeParse(id).success,
    "must be 1 to 64 letters, digits, '-' or '_' (one NATS subject token), e.g. shoal-run-1",
  ).optional(),
  minWorkers: int(1).optional(),
  joinTimeout: number().gt(0, "must be > 0").default(60),
  gradEncoding: z.enum(["f32", "bf16"], { error: "must be f32 or bf16" }).default("f32"),
  transport: z.enum(["auto", "direct", "nats"], { error: "must be auto, direct or nats" }).default("auto"),
  allreduce: z.enum(["star", "ring", "auto"], { error: "must be star, ring or auto" }).default("star"),
  dataListen: z.string().regex(
    /^(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):\d{1,5}$/,
    "must be HOST:PORT, e.g. 0.0.0.0:7070",
  )
    .optional(),
  dataAdvertise: z.string().regex(
    /^(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+)(:\d{1,5})?$/,
    "must be HOST or HOST:PORT",
  )
    .optional(),
  dataUnix: z.boolean({ error: "must be true or false" }).default(true),
  dataTlsCert: path().optional(),
  dataTlsKey: path().optional(),
  logdir: path().optional(),
  checkpointDir: path().optional(),
  resume: z.boolean({ error: "must be true or false" }).default(false),
  seed: int(0).default(42),
  backend: z.enum(BACKEND_REQUESTS as [BackendRequest, ...BackendRequest[]], {
    error: `must be one of ${BACKEND_REQUESTS.join(", ")}`,
  }).default("auto"),
  limitTrain: int(1).optional(),
  trainData: path().optional(),
  validationData: path().optional(),
  testData: path().optional(),
  xKey: z.string({ error: "must be the name of an array in the shards" }).min(1, "must not be empty")
    .default("x"),
  yKey: z.string({ error: "must be the name of an array in the shards" }).min(1, "must not be empty")
    .default("y"),
  prefetch: int(0).max(2, "must be 0, 1 or 2 (batches held in memory)").default(1),
  summary: path().optional(),
  verbose: z.union([z.literal(0), z.literal(1), z.literal(2)], {
    error: "must be 0 (silent), 1 (progress bar) or 2 (one line per epoch)",
  }).default(2),
});

export type Job = z.infer<typeof JobSchema>;

/** Raised for a bad flag or config value; the CLI prints it and exits 2. */
export class JobConfigError extends Error {
  override name = "JobConfigError";
}

const FLAGS = {
  config: { type: "string" },
  example: { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  "validation-split": { type: "string" },
  "learning-rate": { type: "string" },
  patience: { type: "string" },
  workers: { type: "string" },
  gpus: { type: "string" },
  nats: { type: "string" },
  ...NATS_AUTH_FLAG_OPTIONS,
  "job-id": { type: "string" },
  "min-workers": { type: "string" },
  "join-timeout": { type: "string" },
  "grad-encoding": { type: "string" },
  transport: { type: "string" },
  allreduce: { type: "string" },
  "data-listen": { type: "string" },
  "data-advertise": { type: "string" },
  "data-unix": { type: "string" },
  "data-tls-cert": { type: "string" },
  "data-tls-key": { type: "string" },
  logdir: { type: "string" },
  "checkpoint-dir": { type: "string" },
  resume: { type: "boolean" },
  seed: { type: "string" },
  backend: { type: "string" },
  "limit-train": { type: "string" },
  "train-data": { type: "string" },
  "validation-data": { type: "string" },
  "test-data": { type: "string" },
  "x-key": { type: "string" },
  "y-key": { type: "string" },
  prefetch: { type: "string" },
  summary: { type: "string" },
  verbose: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const USAGE = `Usage: deno task train [options]

Runs the Keras chapter's Fashion-MNIST classifier (512-256-128 with BatchNorm/Dropout, Adam 1e-3,
batch 64, validationSplit 0.15, EarlyStopping patience 5 with restoreBestWeights, ReduceLROnPlateau
factor 0.5 patience 3 minLr 1e-6) and reports test accuracy.

Options (a flag overrides the config file, which overrides the default):
  --config FILE            YAML or JSON job file with the same options in camelCase
  --example NAME           fashion-mnist (default; fashion_mnist works too)
  --epochs N               default 50
  --batch-size N           global batch size, split over workers; default 64
  --validation-split F     default 0.15 (of the built-in data; not with --train-data)
  --learning-rate F        default 0.001
  --patience N             EarlyStopping patience; default 5
  --workers N              0 = in-process (default); N = N worker processes over NATS
  --gpus 0,1,...           one worker per listed GPU (sets CUDA_VISIBLE_DEVICES)
  --nats URL               use an existing NATS server and wait for --workers external workers
                           (no password in the URL: use the flags below or SHOAL_NATS_* variables)
${NATS_AUTH_USAGE}
  --job-id ID              the job's id on NATS, which workers started with --job ID serve (one
                           run each, then they exit); default random
  --min-workers N          pause below N live workers; default 1
  --join-timeout S         seconds to wait for workers; default 60
  --grad-encoding ENC      f32 (default) or bf16
  --transport T            how weights and gradients travel: direct (the data plane, a connection
                           from each worker to this process), nats (through the NATS server), or
                           auto (default: direct where a worker reaches it, NATS otherwise)
  --allreduce A            how gradients are reduced: star (default: every gradient to this process),
                           ring (the workers reduce-scatter among themselves over the data plane and
                           send one shard each: this process's link carries ~2x the model whatever
                           the number of workers), or auto (ring from 3 workers and a 1 MiB model
                           when their bytes cross a link)
  --data-listen HOST:PORT  TCP address of the data plane; default 127.0.0.1:0 with the embedded
                           server, 0.0.0.0:0 with --nats (workers on this host use a Unix socket)
  --data-advertise HOST[:PORT]  address workers dial for it (a Kubernetes Service name)
  --data-unix true|false   also offer the data plane on a Unix socket for workers on this host;
                           default true
  --data-tls-cert F        TLS certificate of the data plane (required when NATS uses TLS),
  --data-tls-key F         with its key: workers verify it with their NATS CA
                           (or SHOAL_DATA_TLS_CERT and SHOAL_DATA_TLS_KEY)
  --logdir DIR             write TensorBoard logs (train/ and validation/ runs)
  --checkpoint-dir DIR     write checkpoints and backups there
  --resume                 continue from the backup in --checkpoint-dir
  --seed N                 default 42
  --backend NAME           auto|tensorflow-gpu|tensorflow|wasm-blas|wasm|cpu; default auto
  --limit-train N          train on the first N training samples (smoke runs; built-in data)
  --train-data GLOB        train on .npz shards (numpy.savez) instead of the built-in data, e.g.
                           'data/train-*.npz' (quote it): each process reads its rows from the files
  --validation-data GLOB   shards evaluated at each epoch's end (val_loss); without it the callbacks
                           monitor loss
  --test-data GLOB         shards evaluated once at the end (test accuracy)
  --x-key NAME             the array of the model's input in every shard; default x
  --y-key NAME             the array of the labels (class ids 0-9); default y
  --prefetch N             batches of shards read ahead while one computes: 0, 1 (default) or 2
  --summary FILE           write a JSON summary of the run
  --verbose 0|1|2          default 2 (one line per epoch)

Relative paths (--config, --logdir, --checkpoint-dir, --summary, --train-data, --validation-data,
--test-data, credential files, and paths in the config file) are taken from the folder you run the
command in. \`deno task shards --out DIR\` writes Fashion-MNIST as shards to try --train-data with.
`;

const NUMERIC = new Set([
  "epochs",
  "batch-size",
  "validation-split",
  "learning-rate",
  "patience",
  "workers",
  "min-workers",
  "join-timeout",
  "seed",
  "limit-train",
  "verbose",
  "prefetch",
]);

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The value at `path` in `data`, as JSON, for error messages. */
function received(data: unknown, path: readonly PropertyKey[]): string {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== "object") return "nothing";
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value === undefined ? "nothing" : JSON.stringify(value);
}

/** Where an option came from, for error messages: its flag, or its key in the config file. */
type Origin = (key: string) => string;

function formatIssues(error: z.ZodError, data: unknown, origin: Origin): string {
  const known = Object.keys(JobSchema.shape);
  return error.issues
    .map((i) => {
      if (i.code === "unrecognized_keys") {
        return i.keys.map((k) =>
          `Cannot run the job as ${origin(k)} is not an option: remove it or use one of ${
            known.join(", ")
          } ` +
          "(camelCase)." +
          didYouMean(k, known)
        ).join("\n");
      }
      const where = i.path.length ? origin(i.path.map(String).join(".")) : "the config";
      const value = received(data, i.path);
      return i.message.startsWith("must ")
        ? `Cannot run the job as ${where} ${i.message}: current value is ${value}`
        : `Cannot run the job as ${where} is invalid (${i.message}): current value is ${value}`;
    })
    .join("\n");
}

/** Flags that take a number: `--epochs -3` passes -3 to them rather than reading it as a flag. */
function joinNegativeNumbers(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < args.length; k++) {
    const arg = args[k]!;
    const next = args[k + 1];
    if (arg.startsWith("--") && NUMERIC.has(arg.slice(2)) && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${arg}=${next}`);
      k++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** A parseArgs error as the user should read it: an unknown flag names the closest known one. */
function flagError(e: Error & { code?: string }): JobConfigError {
  const unknown = e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
    ? e.message.match(/'--?([^']+)'/)?.[1]
    : undefined;
  const hint = unknown === undefined ? "" : didYouMean(unknown, Object.keys(FLAGS), (f) => `--${f}`);
  return new JobConfigError(`${e.message}.${hint}\n\n${USAGE}`);
}

/** The job's fields that hold file or folder paths. */
const PATH_FIELDS = [
  "logdir",
  "checkpointDir",
  "summary",
  "dataTlsCert",
  "dataTlsKey",
  "trainData",
  "validationData",
  "testData",
] as const;
const NATS_AUTH_PATH_FIELDS = [
  "passwordFile",
  "tokenFile",
  "credsFile",
  "nkeySeedFile",
  "tlsCa",
  "tlsCert",
  "tlsKey",
] as const;

/** Makes every path of the job absolute, relative ones taken from `cwd`. */
function resolvePaths(job: Job, cwd: string): void {
  for (const field of PATH_FIELDS) {
    const value = job[field];
    if (value !== undefined) job[field] = userPath(value, cwd);
  }
  const auth = job.natsAuth;
  if (auth) {
    for (const field of NATS_AUTH_PATH_FIELDS) {
      const value = auth[field];
      if (value !== undefined) auth[field] = userPath(value, cwd);
    }
  }
}

/** Throws a {@link JobConfigError} for data options that do not go together. */
function checkDataOptions(job: Job, origin: Origin): void {
  if (job.trainData === undefined) {
    for (const key of ["validationData", "testData"] as const) {
      if (job[key] !== undefined) {
        throw new JobConfigError(
          `Cannot run the job as ${origin(key)} needs trainData (--train-data GLOB): the built-in ` +
            "data brings its own validation split and test set. Pass --train-data too, or remove it",
        );
      }
    }
    return;
  }
  for (const key of ["validationSplit", "limitTrain"] as const) {
    if (job[key] !== undefined) {
      throw new JobConfigError(
        `Cannot run the job as ${origin(key)} applies to the built-in data only: rows in files are ` +
          "read where they lie, not split or cut. " +
          (key === "validationSplit"
            ? "Write validation shards and pass --validation-data GLOB instead"
            : "Train on fewer shards instead (a narrower --train-data pattern)"),
      );
    }
  }
}

/** Options of {@link parseJob}. */
export interface ParseJobOptions {
  /**
   * The folder relative paths are taken from.
   * @default {userCwd()}: INIT_CWD (the folder `deno task` was run in), else the process's folder
   */
  cwd?: string;
}

/** Parses CLI arguments (and the config file they name) into a validated job with absolute paths. */
export async function parseJob(args: string[], options: ParseJobOptions = {}): Promise<Job | "help"> {
  const cwd = options.cwd ?? userCwd();
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeNumbers(args),
      options: FLAGS,
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw flagError(e as Error);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return "help";
  let fromFile: Record<string, unknown> = {};
  let configPath: string | undefined;
  if (typeof v.config === "string") {
    configPath = userPath(v.config, cwd);
    let text: string;
    try {
      text = await Deno.readTextFile(configPath);
    } catch (e) {
      throw new JobConfigError(
        `Cannot read config file ${configPath}: ${(e as Error).message}. Relative paths are taken from ` +
          `${cwd}, the folder the command ran in`,
      );
    }
    if (text.trim() === "") {
      throw new JobConfigError(
        `Config file ${configPath} must hold a mapping of options, e.g. "epochs: 10": it is empty`,
      );
    }
    const format = configPath.endsWith(".json") ? "JSON" : "YAML";
    let data: unknown;
    try {
      data = format === "JSON" ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new JobConfigError(
        `Cannot parse config file ${configPath} as it must be valid ${format}: ${
          (e as Error).message.trimEnd()
        }. ` +
          "Fix the syntax there.",
      );
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      const found = Array.isArray(data) ? "a list" : JSON.stringify(data);
      throw new JobConfigError(
        `Config file ${configPath} must hold a mapping of options, e.g. "epochs: 10": found ${found}`,
      );
    }
    const inFile: Origin = (key) => `${key} in ${configPath}`;
    const fileCheck = JobSchema.partial().safeParse(data);
    if (!fileCheck.success) throw new JobConfigError(formatIssues(fileCheck.error, data, inFile));
    fromFile = data as Record<string, unknown>;
  }
  const fromFlags: Record<string, unknown> = {};
  const natsAuthFlags: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(v)) {
    if (flag === "config" || value === undefined) continue;
    const authField = NATS_AUTH_FLAGS[flag as keyof typeof NATS_AUTH_FLAGS];
    if (authField !== undefined) {
      natsAuthFlags[authField] = value;
    } else if (NUMERIC.has(flag)) {
      const n = Number(value);
      if (value === "" || !Number.isFinite(n)) {
        throw new JobConfigError(
          `Cannot run the job as --${flag} must be a number: current value is ${JSON.stringify(value)}`,
        );
      }
      fromFlags[camel(flag)] = n;
    } else if (flag === "data-unix") {
      if (value !== "true" && value !== "false") {
        throw new JobConfigError(
          `Cannot run the job as --data-unix must be true or false: current value is ${
            JSON.stringify(value)
          }`,
        );
      }
      fromFlags.dataUnix = value === "true";
    } else if (flag === "gpus") {
      const ids = String(value).split(",").map((s) => Number(s.trim()));
      if (ids.some((n) => !Number.isInteger(n) || n < 0)) {
        throw new JobConfigError(
          `Cannot run the job as --gpus must be a comma-separated list of GPU ids like 0,1: ` +
            `current value is "${value}"`,
        );
      }
      fromFlags.gpus = ids;
    } else {
      fromFlags[camel(flag)] = value;
    }
  }
  if (Object.keys(natsAuthFlags).length > 0) {
    const fileAuth = fromFile.natsAuth;
    fromFlags.natsAuth = { ...(typeof fileAuth === "object" ? fileAuth : {}), ...natsAuthFlags };
  }
  const merged = { ...fromFile, ...fromFlags };
  const flagOf = new Map(Object.keys(FLAGS).map((f) => [camel(f), f]));
  const origin: Origin = (key) => {
    const top = key.split(".")[0]!;
    if (top in fromFlags && flagOf.has(top)) return `--${flagOf.get(top)}`;
    return configPath === undefined ? key : `${key} in ${configPath}`;
  };
  const result = JobSchema.safeParse(merged);
  if (!result.success) throw new JobConfigError(formatIssues(result.error, merged, origin));
  const job = result.data;
  if (job.nats !== undefined) {
    try {
      assertNoSecretInUrl(job.nats);
    } catch (e) {
      throw new JobConfigError(`--nats: ${(e as Error).message}`);
    }
  }
  if (job.gpus && job.workers === 0) job.workers = job.gpus.length;
  if ((job.dataTlsCert === undefined) !== (job.dataTlsKey === undefined)) {
    throw new JobConfigError(
      `Cannot run the job as the data plane's TLS needs both --data-tls-cert and --data-tls-key: ` +
        `only ${job.dataTlsCert === undefined ? "the key" : "the certificate"} was given`,
    );
  }
  checkDataOptions(job, origin);
  if (job.allreduce === "ring" && job.transport === "nats") {
    throw new JobConfigError(
      "Cannot run the job as --allreduce ring needs the data plane between workers: --transport is nats. " +
        "Use --allreduce star, or --transport auto or direct",
    );
  }
  resolvePaths(job, cwd);
  return job;
}
