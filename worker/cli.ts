/**
 * Command line of the worker process: `deno task worker --nats URL [--name ID] [--backend NAME] [--gpu N]
 * [--job ID] [--ring-listen HOST:PORT] [credentials]`. Credentials come from files named by flags or from SHOAL_NATS_*
 * variables, never from the command line itself (see shared/io/nats/auth.ts). Relative file paths in
 * flags are taken from the folder the command ran in (see shared/io/paths.ts).
 */
import { parseArgs } from "node:util";
import { z } from "npm:zod@4.6.7";
import { BACKEND_REQUESTS, didYouMean } from "../shared/model/mod.ts";
import { userCwd, userPath } from "../shared/io/paths.ts";
import {
  assertNoSecretInUrl,
  NATS_AUTH_FLAG_OPTIONS,
  NATS_AUTH_USAGE,
  natsAuthFromEnvAndFlags,
  natsAuthSourcesFromFlags,
  type ReadTextFile,
} from "../shared/io/nats/mod.ts";
import { JobIdSchema, WorkerNameSchema } from "../shared/io/protocol/mod.ts";
import type { WorkerOptions } from "./worker.ts";
import { type ListenAddress, parseListenAddress } from "../shared/io/data_plane/address.ts";

/** Usage text printed on `--help` and after a bad argument. */
export const USAGE = `Usage: deno task worker --nats URL [options]

  --nats URL       NATS server of the coordinator (required), e.g. nats://127.0.0.1:4222
  --name ID        worker name, unique within a job (default: <host>-<pid>)
  --backend NAME   ${BACKEND_REQUESTS.join(" | ")} (default: what the coordinator asks for)
  --gpu N          GPU id: sets CUDA_VISIBLE_DEVICES=N before a backend loads
  --job ID         serve only this job, then exit (default: serve every job announced)
  --join-timeout S with --job: give up (exit 75) when the job did not announce itself within S
                   seconds, at the start or after its coordinator stopped (default: no limit)
  --ring-listen HOST:PORT
                   where to listen for ring neighbours (allreduce ring or auto), e.g. 0.0.0.0:7071:
                   a fixed port a firewall can admit (default: a free port)
  --quiet          no line for routine events (connected, joined); problems are still reported
${NATS_AUTH_USAGE}
  --help           print this text`;

/** What to do without `--nats`. */
const NATS_REQUIRED = "Cannot start the worker as --nats URL is required: give the NATS server of the " +
  "coordinator, e.g. deno task worker --nats nats://127.0.0.1:4222 (a coordinator started with " +
  "--nats URL --workers N waits for N such workers)";

const FLAGS = {
  nats: { type: "string" },
  name: { type: "string" },
  backend: { type: "string" },
  gpu: { type: "string" },
  job: { type: "string" },
  "join-timeout": { type: "string" },
  "ring-listen": { type: "string" },
  quiet: { type: "boolean" },
  ...NATS_AUTH_FLAG_OPTIONS,
  help: { type: "boolean" },
} as const;

const Args = z.object({
  nats: z.string().min(1, NATS_REQUIRED),
  name: WorkerNameSchema.optional(),
  backend: z.enum(BACKEND_REQUESTS as [string, ...string[]]).optional(),
  gpu: z.coerce.number().int().nonnegative().optional(),
  job: JobIdSchema.optional(),
  "join-timeout": z.coerce.number().positive("must be a number of seconds > 0").optional(),
});

/**
 * Parses worker arguments; `undefined` means `--help`. Throws a `TypeError` naming the bad argument.
 * Credentials are read from the files the flags name and from `env` (SHOAL_NATS_*).
 */
export function parseWorkerArgs(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
  readTextFile: ReadTextFile = Deno.readTextFileSync,
): Omit<WorkerOptions, "signal"> | undefined {
  let values;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true }));
  } catch (e) {
    const error = e as Error & { code?: string };
    const unknown = error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
      ? error.message.match(/'--?([^']+)'/)?.[1]
      : undefined;
    if (unknown === undefined) throw new TypeError(`Cannot start the worker: ${error.message}`);
    const hint = didYouMean(unknown, Object.keys(FLAGS), (f) => `--${f}`);
    throw new TypeError(`Cannot start the worker as --${unknown} is not an option.${hint}`);
  }
  if (values.help) return undefined;
  if (values.nats === undefined) throw new TypeError(NATS_REQUIRED);
  const parsed = Args.safeParse({
    nats: values.nats,
    name: values.name,
    backend: values.backend,
    gpu: values.gpu,
    job: values.job,
    "join-timeout": values["join-timeout"],
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path.join(".");
    const value = JSON.stringify((values as Record<string, unknown>)[flag]);
    throw new TypeError(
      `Cannot start the worker as --${flag} is invalid: ${issue.message}; current value is ${value}`,
    );
  }
  const v = parsed.data;
  const joinTimeout = v["join-timeout"];
  let ringListen: ListenAddress | undefined;
  if (values["ring-listen"] !== undefined) {
    try {
      ringListen = parseListenAddress(values["ring-listen"]);
    } catch {
      throw new TypeError(
        `Cannot start the worker as --ring-listen is invalid: expected HOST:PORT, e.g. 0.0.0.0:7071 ` +
          `(all interfaces); current value is ${JSON.stringify(values["ring-listen"])}`,
      );
    }
  }
  if (joinTimeout !== undefined && v.job === undefined) {
    throw new TypeError(
      `Cannot start the worker as --join-timeout only applies to a worker bound to one job: add --job ID ` +
        `or remove --join-timeout (current value ${joinTimeout})`,
    );
  }
  assertNoSecretInUrl(v.nats);
  // Only `user` is not a path; the environment's paths stay as they are (absolute in a pod spec).
  const cwd = userCwd(env);
  const sources = Object.fromEntries(
    Object.entries(natsAuthSourcesFromFlags(values)).map((
      [k, v],
    ) => [k, k === "user" ? v : userPath(v, cwd)]),
  ) as ReturnType<typeof natsAuthSourcesFromFlags>;
  const auth = natsAuthFromEnvAndFlags(sources, env, readTextFile);
  const name = v.name ?? `${Deno.hostname().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40)}-${Deno.pid}`;
  return {
    nats: v.nats,
    name,
    ...(auth === undefined ? {} : { auth }),
    ...(v.backend === undefined ? {} : { backend: v.backend as WorkerOptions["backend"] & string }),
    ...(v.gpu === undefined ? {} : { gpu: v.gpu }),
    ...(v.job === undefined ? {} : { job: v.job }),
    ...(joinTimeout === undefined ? {} : { joinTimeoutSeconds: joinTimeout }),
    ...(ringListen === undefined ? {} : { ringListen }),
    ...(values.quiet ? { quiet: true } : {}),
  };
}
