/**
 * Command line of the worker process: `deno task worker --nats URL [--name ID] [--backend NAME] [--gpu N]
 * [--job ID] [--ring-listen HOST:PORT] [--ring-tls-cert FILE --ring-tls-key FILE] [credentials]`.
 * Credentials come from files named by flags or from SHOAL_NATS_* variables, never from the command
 * line itself (see shared/io/nats/auth.ts); the ring listener's certificate and key likewise (flags or
 * SHOAL_RING_TLS_CERT / SHOAL_RING_TLS_KEY, paths). Relative file paths in flags are taken from the
 * folder the command ran in (see shared/io/paths.ts).
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
import type { DataTls } from "../shared/io/data_plane/mod.ts";

/** Environment variables naming the ring listener's TLS files (a flag wins over its variable). */
export const RING_TLS_ENV = { cert: "SHOAL_RING_TLS_CERT", key: "SHOAL_RING_TLS_KEY" } as const;

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
  --ring-tls-cert F --ring-tls-key F
                   PEM certificate and key of this worker's ring listener (or SHOAL_RING_TLS_CERT
                   and SHOAL_RING_TLS_KEY): when the data plane uses TLS the ring does too, and
                   neighbours verify it with the CA of --nats-tls-ca, so the certificate must be
                   valid for the address this worker advertises. Without them a job over a TLS
                   data plane keeps this worker on the star
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
  "ring-tls-cert": { type: "string" },
  "ring-tls-key": { type: "string" },
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
 * Credentials are read from the files the flags name and from `env` (SHOAL_NATS_*), the ring
 * listener's certificate and key from `--ring-tls-cert` / `--ring-tls-key` or {@link RING_TLS_ENV}.
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
  const ringTls = ringTlsFromFlagsAndEnv(
    values["ring-tls-cert"],
    values["ring-tls-key"],
    env,
    cwd,
    readTextFile,
  );
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
    ...(ringTls === undefined ? {} : { ringTls }),
    ...(values.quiet ? { quiet: true } : {}),
  };
}

/**
 * The ring listener's PEM certificate and key, read from the files `--ring-tls-cert` and
 * `--ring-tls-key` name (or {@link RING_TLS_ENV}; a flag wins); `undefined` when neither is given.
 * Throws a `TypeError` when only one is given or a file holds no PEM block, an `Error` naming the
 * file that cannot be read.
 */
function ringTlsFromFlagsAndEnv(
  certFlag: string | undefined,
  keyFlag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
  readTextFile: ReadTextFile,
): DataTls | undefined {
  const nonEmpty = (value: string | undefined) => value === undefined || value === "" ? undefined : value;
  const certFile = nonEmpty(certFlag) !== undefined
    ? userPath(certFlag!, cwd)
    : nonEmpty(env[RING_TLS_ENV.cert]);
  const keyFile = nonEmpty(keyFlag) !== undefined ? userPath(keyFlag!, cwd) : nonEmpty(env[RING_TLS_ENV.key]);
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    const [given, missing] = certFile === undefined
      ? ["--ring-tls-key", `--ring-tls-cert FILE (or ${RING_TLS_ENV.cert})`]
      : ["--ring-tls-cert", `--ring-tls-key FILE (or ${RING_TLS_ENV.key})`];
    throw new TypeError(
      `Cannot start the worker as ${given} needs its pair: add ${missing}, or give neither ` +
        "(the worker then takes no part in rings over a TLS data plane)",
    );
  }
  const read = (path: string, flag: string, what: string, block: RegExp): string => {
    let text: string;
    try {
      text = readTextFile(path);
    } catch (error) {
      throw new Error(
        `Cannot read the ring's TLS ${what} file ${path} (${flag}): ${
          error instanceof Error ? error.message : error
        }; check the path and that this process may read it`,
        { cause: error },
      );
    }
    if (!block.test(text)) {
      throw new TypeError(
        `Cannot use ${path} as the ring's TLS ${what} (${flag}): it holds no PEM ${what}; ` +
          `pass a PEM file (-----BEGIN ${what === "key" ? "PRIVATE KEY" : "CERTIFICATE"}-----)`,
      );
    }
    return text;
  };
  return {
    cert: read(
      certFile,
      `--ring-tls-cert / ${RING_TLS_ENV.cert}`,
      "certificate",
      /-----BEGIN CERTIFICATE-----/,
    ),
    key: read(keyFile, `--ring-tls-key / ${RING_TLS_ENV.key}`, "key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  };
}
