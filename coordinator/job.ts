/**
 * The training job of `deno task train`: its options (CLI flags over a YAML/JSON config file over
 * defaults), validated with zod, and the built-in example it runs.
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

export const BACKENDS = ["auto", "tensorflow-gpu", "tensorflow", "wasm-blas", "wasm", "cpu"] as const;

/** A job, as a config file may give it. Unknown keys are errors. */
export const JobSchema = z.strictObject({
  example: z.enum(["fashion-mnist"]).default("fashion-mnist"),
  epochs: z.number().int().positive().default(50),
  batchSize: z.number().int().positive().default(64),
  validationSplit: z.number().gt(0).lt(1).default(0.15),
  learningRate: z.number().positive().default(0.001),
  patience: z.number().int().nonnegative().default(5),
  workers: z.number().int().nonnegative().default(0),
  gpus: z.array(z.number().int().nonnegative()).optional(),
  nats: z.string().url().optional(),
  natsAuth: NatsAuthConfigSchema.optional(),
  minWorkers: z.number().int().positive().optional(),
  joinTimeout: z.number().positive().default(60),
  gradEncoding: z.enum(["f32", "bf16"]).default("f32"),
  logdir: z.string().min(1).optional(),
  checkpointDir: z.string().min(1).optional(),
  resume: z.boolean().default(false),
  seed: z.number().int().nonnegative().default(42),
  backend: z.enum(BACKENDS).default("auto"),
  limitTrain: z.number().int().positive().optional(),
  summary: z.string().min(1).optional(),
  verbose: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(2),
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
  "min-workers": { type: "string" },
  "join-timeout": { type: "string" },
  "grad-encoding": { type: "string" },
  logdir: { type: "string" },
  "checkpoint-dir": { type: "string" },
  resume: { type: "boolean" },
  seed: { type: "string" },
  backend: { type: "string" },
  "limit-train": { type: "string" },
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
  --example NAME           fashion-mnist (default)
  --epochs N               default 50
  --batch-size N           global batch size, split over workers; default 64
  --validation-split F     default 0.15
  --learning-rate F        default 0.001
  --patience N             EarlyStopping patience; default 5
  --workers N              0 = in-process (default); N = N worker processes over NATS
  --gpus 0,1,...           one worker per listed GPU (sets CUDA_VISIBLE_DEVICES)
  --nats URL               use an existing NATS server and wait for --workers external workers
                           (no password in the URL: use the flags below or SHOAL_NATS_* variables)
${NATS_AUTH_USAGE}
  --min-workers N          pause below N live workers; default --workers
  --join-timeout S         seconds to wait for workers; default 60
  --grad-encoding ENC      f32 (default) or bf16
  --logdir DIR             write TensorBoard logs (train/ and validation/ runs)
  --checkpoint-dir DIR     write checkpoints and backups there
  --resume                 continue from the backup in --checkpoint-dir
  --seed N                 default 42
  --backend NAME           auto|tensorflow-gpu|tensorflow|wasm-blas|wasm|cpu; default auto
  --limit-train N          train on the first N training samples (smoke runs)
  --summary FILE           write a JSON summary of the run
  --verbose 0|1|2          default 2 (one line per epoch)
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

function formatIssues(error: z.ZodError, source: string, data: unknown): string {
  const known = Object.keys(JobSchema.shape).join(", ");
  return error.issues
    .map((i) => {
      if (i.code === "unrecognized_keys") {
        const keys = i.keys.map((k) => `"${k}"`).join(", ");
        return `${source}: unknown option ${keys}: remove it or use one of ${known} (camelCase)`;
      }
      const where = i.path.length ? i.path.join(".") : "(root)";
      return `${source}: ${where}: ${i.message}; current value is ${received(data, i.path)}`;
    })
    .join("\n");
}

/** Parses CLI arguments (and the config file they name) into a validated job. */
export async function parseJob(args: string[]): Promise<Job | "help"> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false });
  } catch (e) {
    throw new JobConfigError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return "help";
  let fromFile: Record<string, unknown> = {};
  if (typeof v.config === "string") {
    let text: string;
    try {
      text = await Deno.readTextFile(v.config);
    } catch (e) {
      throw new JobConfigError(`Cannot read config file ${v.config}: ${(e as Error).message}`);
    }
    if (text.trim() === "") {
      throw new JobConfigError(
        `Config file ${v.config} must hold a mapping of options, e.g. "epochs: 10": it is empty`,
      );
    }
    const format = v.config.endsWith(".json") ? "JSON" : "YAML";
    let data: unknown;
    try {
      data = format === "JSON" ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new JobConfigError(
        `Cannot parse config file ${v.config} as it must be valid ${format}: ${
          (e as Error).message.trimEnd()
        }. ` +
          "Fix the syntax there.",
      );
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      const found = Array.isArray(data) ? "a list" : JSON.stringify(data);
      throw new JobConfigError(
        `Config file ${v.config} must hold a mapping of options, e.g. "epochs: 10": found ${found}`,
      );
    }
    const fileCheck = JobSchema.partial().safeParse(data);
    if (!fileCheck.success) throw new JobConfigError(formatIssues(fileCheck.error, v.config, data));
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
        throw new JobConfigError(`--${flag}: expected a number, received "${value}"`);
      }
      fromFlags[camel(flag)] = n;
    } else if (flag === "gpus") {
      const ids = String(value).split(",").map((s) => Number(s.trim()));
      if (ids.some((n) => !Number.isInteger(n) || n < 0)) {
        throw new JobConfigError(
          `--gpus: expected a comma-separated list of GPU ids like 0,1, received "${value}"`,
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
  const result = JobSchema.safeParse(merged);
  if (!result.success) throw new JobConfigError(formatIssues(result.error, "options", merged));
  const job = result.data;
  if (job.nats !== undefined) {
    try {
      assertNoSecretInUrl(job.nats);
    } catch (e) {
      throw new JobConfigError(`--nats: ${(e as Error).message}`);
    }
  }
  if (job.gpus && job.workers === 0) job.workers = job.gpus.length;
  return job;
}
