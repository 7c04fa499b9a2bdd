/**
 * Client credentials for a NATS server: where they come from (flags naming files, environment
 * variables), how they become nats.js connection options, and how URLs are shown without secrets.
 *
 * Secrets never travel on a command line: flags name files (`--nats-password-file`,
 * `--nats-token-file`, `--nats-creds`, `--nats-nkey-seed-file`), and the environment may carry a
 * password or token (`SHOAL_NATS_PASSWORD`, `SHOAL_NATS_TOKEN`) for Kubernetes secrets. A URL with
 * a password inside (`nats://u:p@host`) is refused.
 *
 * | method | flags | environment |
 * | --- | --- | --- |
 * | user + password | `--nats-user NAME --nats-password-file FILE` | `SHOAL_NATS_USER`, `SHOAL_NATS_PASSWORD` |
 * | token | `--nats-token-file FILE` | `SHOAL_NATS_TOKEN` |
 * | NKey/JWT credentials | `--nats-creds FILE` | `SHOAL_NATS_CREDS` (a path) |
 * | NKey seed | `--nats-nkey-seed-file FILE` | — |
 * | TLS | `--nats-tls-ca FILE [--nats-tls-cert FILE --nats-tls-key FILE]` | `SHOAL_NATS_TLS_CA` (a path) |
 *
 * A flag wins over its environment variable.
 *
 * @module
 */
import {
  type ConnectionOptions,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "npm:nats@2.29.3";
import { connectNatsDeno } from "./deno_transport.ts";
import type { NatsRole } from "./server_config.ts";

/** TLS files of a client: the CA that signed the server, and a client certificate for mutual TLS. */
export interface NatsTlsAuth {
  /** PEM file of the CA that signed the server certificate. */
  caFile?: string;
  /** PEM client certificate (mutual TLS); needs `keyFile`. */
  certFile?: string;
  /** PEM private key of `certFile`. */
  keyFile?: string;
}

/**
 * Resolved credentials of one client. It holds secrets (password, token, creds, seed): never log it;
 * use {@link describeNatsAuth} instead. At most one of password, token, creds and seed is set.
 */
export interface NatsAuth {
  /** User name; with `password`. */
  user?: string;
  /** Password of `user`. Secret. */
  password?: string;
  /** Token (the server's `authorization { token }`). Secret. */
  token?: string;
  /** Text of a `.creds` file (user JWT and NKey seed). Secret. */
  creds?: string;
  /** NKey user seed (`SU…`). Secret. */
  nkeySeed?: string;
  /** TLS files; without them the connection is plain text unless the URL says `tls://`. */
  tls?: NatsTlsAuth;
}

/** Where credentials come from: the file paths and names a CLI or config file may carry. */
export interface NatsAuthSources {
  /** `--nats-user` */
  user?: string;
  /** `--nats-password-file`: file holding the password (one trailing newline is dropped). */
  passwordFile?: string;
  /** `--nats-token-file`: file holding the token. */
  tokenFile?: string;
  /** `--nats-creds`: a `.creds` file (JWT + NKey seed). */
  credsFile?: string;
  /** `--nats-nkey-seed-file`: file holding an NKey user seed. */
  nkeySeedFile?: string;
  /** `--nats-tls-ca` */
  tlsCa?: string;
  /** `--nats-tls-cert` */
  tlsCert?: string;
  /** `--nats-tls-key` */
  tlsKey?: string;
}

/** The command-line flags that name credential sources, and the {@link NatsAuthSources} field each fills. */
export const NATS_AUTH_FLAGS = {
  "nats-user": "user",
  "nats-password-file": "passwordFile",
  "nats-token-file": "tokenFile",
  "nats-creds": "credsFile",
  "nats-nkey-seed-file": "nkeySeedFile",
  "nats-tls-ca": "tlsCa",
  "nats-tls-cert": "tlsCert",
  "nats-tls-key": "tlsKey",
} as const satisfies Record<string, keyof NatsAuthSources>;

/** `node:util` parseArgs options for {@link NATS_AUTH_FLAGS}. */
export const NATS_AUTH_FLAG_OPTIONS = Object.fromEntries(
  Object.keys(NATS_AUTH_FLAGS).map((flag) => [flag, { type: "string" }]),
) as Record<keyof typeof NATS_AUTH_FLAGS, { type: "string" }>;

/** Usage lines for {@link NATS_AUTH_FLAGS}, aligned for a 25-column flag column. */
export const NATS_AUTH_USAGE =
  `  --nats-user NAME         NATS user (or SHOAL_NATS_USER), with --nats-password-file
  --nats-password-file F   file holding the NATS password (or SHOAL_NATS_PASSWORD)
  --nats-token-file F      file holding a NATS token (or SHOAL_NATS_TOKEN)
  --nats-creds F           NKey/JWT .creds file (or SHOAL_NATS_CREDS)
  --nats-nkey-seed-file F  file holding an NKey user seed
  --nats-tls-ca F          CA of the server's TLS certificate (or SHOAL_NATS_TLS_CA)
  --nats-tls-cert F        client certificate for mutual TLS, with --nats-tls-key F`;

/** The credential sources among parsed command-line values (only the flags that were given). */
export function natsAuthSourcesFromFlags(values: Readonly<Record<string, unknown>>): NatsAuthSources {
  const sources: Record<string, string> = {};
  for (const [flag, field] of Object.entries(NATS_AUTH_FLAGS)) {
    const value = values[flag];
    if (typeof value === "string") sources[field] = value;
  }
  return sources as NatsAuthSources;
}

/** Environment variables read by {@link natsAuthFromEnvAndFlags}. */
export const NATS_AUTH_ENV = {
  user: "SHOAL_NATS_USER",
  password: "SHOAL_NATS_PASSWORD",
  token: "SHOAL_NATS_TOKEN",
  credsFile: "SHOAL_NATS_CREDS",
  tlsCa: "SHOAL_NATS_TLS_CA",
} as const;

/** Reads a text file; injected so that {@link natsAuthFromEnvAndFlags} stays testable. */
export type ReadTextFile = (path: string) => string;

/**
 * Builds the credentials of a client from flags (file paths) and environment variables; flags win.
 * Returns `undefined` when nothing is configured. Throws a `TypeError` for a contradictory set
 * (two methods, a user without password, a certificate without key) and an `Error` naming the
 * file that cannot be read; no message carries a secret.
 */
export function natsAuthFromEnvAndFlags(
  flags: NatsAuthSources,
  env: Readonly<Record<string, string | undefined>>,
  readTextFile: ReadTextFile = Deno.readTextFileSync,
): NatsAuth | undefined {
  const read = (path: string, what: string): string => {
    let text: string;
    try {
      text = readTextFile(path);
    } catch (error) {
      throw new Error(
        `Cannot read the NATS ${what} file ${path}: ${
          error instanceof Error ? error.message : error
        }; check the path and that this process may read it`,
        { cause: error },
      );
    }
    const value = text.replace(/\r?\n$/, "");
    if (value.trim() === "") {
      throw new TypeError(
        `Cannot use the NATS ${what} file ${path} as it is empty: write the ${what} into it`,
      );
    }
    return value;
  };
  const nonEmpty = (value: string | undefined) => value === undefined || value === "" ? undefined : value;
  const user = nonEmpty(flags.user) ?? nonEmpty(env[NATS_AUTH_ENV.user]);
  const password = flags.passwordFile !== undefined
    ? read(flags.passwordFile, "password")
    : nonEmpty(env[NATS_AUTH_ENV.password]);
  const token = flags.tokenFile !== undefined
    ? read(flags.tokenFile, "token")
    : nonEmpty(env[NATS_AUTH_ENV.token]);
  const credsFile = nonEmpty(flags.credsFile) ?? nonEmpty(env[NATS_AUTH_ENV.credsFile]);
  const creds = credsFile === undefined ? undefined : read(credsFile, "credentials");
  const nkeySeed = flags.nkeySeedFile === undefined
    ? undefined
    : read(flags.nkeySeedFile, "NKey seed").trim();
  const tls: NatsTlsAuth = {
    ...optional("caFile", nonEmpty(flags.tlsCa) ?? nonEmpty(env[NATS_AUTH_ENV.tlsCa])),
    ...optional("certFile", nonEmpty(flags.tlsCert)),
    ...optional("keyFile", nonEmpty(flags.tlsKey)),
  };
  const auth: NatsAuth = {
    ...optional("user", user),
    ...optional("password", password),
    ...optional("token", token),
    ...optional("creds", creds),
    ...optional("nkeySeed", nkeySeed),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
  if (Object.keys(auth).length === 0) return undefined;
  validateNatsAuth(auth);
  return auth;
}

/**
 * Checks that credentials are consistent: one method at most, a user with its password, a seed that
 * looks like an NKey user seed, a client certificate with its key. Throws a `TypeError` saying
 * what to change; messages name the fields, never their values.
 */
export function validateNatsAuth(auth: NatsAuth): void {
  const methods = [
    auth.password !== undefined ? "password (--nats-password-file / SHOAL_NATS_PASSWORD)" : undefined,
    auth.token !== undefined ? "token (--nats-token-file / SHOAL_NATS_TOKEN)" : undefined,
    auth.creds !== undefined ? "credentials file (--nats-creds / SHOAL_NATS_CREDS)" : undefined,
    auth.nkeySeed !== undefined ? "NKey seed (--nats-nkey-seed-file)" : undefined,
  ].filter((m) => m !== undefined);
  if (methods.length > 1) {
    throw new TypeError(
      `Cannot authenticate to NATS with more than one method: received ${methods.join(" and ")}; keep one`,
    );
  }
  if (auth.password !== undefined && auth.user === undefined) {
    throw new TypeError(
      "Cannot authenticate to NATS with a password and no user name: pass --nats-user or set SHOAL_NATS_USER",
    );
  }
  if (auth.user !== undefined && auth.password === undefined) {
    throw new TypeError(
      `Cannot authenticate to NATS as user ${auth.user} without a password: pass --nats-password-file FILE ` +
        "or set SHOAL_NATS_PASSWORD",
    );
  }
  if (auth.nkeySeed !== undefined && !/^SU[A-Z2-7]{56}$/.test(auth.nkeySeed)) {
    throw new TypeError(
      "Cannot use the NKey seed as it is not a user seed: expected 58 base32 characters starting with SU " +
        "(create one with `nsc generate nkey --user` or nkeys.createUser())",
    );
  }
  if (auth.creds !== undefined && !/-----BEGIN NATS USER JWT-----/.test(auth.creds)) {
    throw new TypeError(
      "Cannot use the NATS credentials file as it holds no '-----BEGIN NATS USER JWT-----' block: " +
        "pass a .creds file made by nsc",
    );
  }
  const tls = auth.tls;
  if (tls && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new TypeError(
      `Cannot set up mutual TLS with only ${tls.certFile === undefined ? "a key" : "a certificate"}: ` +
        "pass both --nats-tls-cert and --nats-tls-key",
    );
  }
}

/**
 * nats.js connection options: `base` (servers, name, …) with the credentials and TLS of `auth` added.
 * Throws a `TypeError` when a server URL carries a password (see {@link assertNoSecretInUrl}).
 *
 * @example
 * ```ts
 * const nc = await connect(connectOptions(auth, { servers: url, name: "shoal-worker-w0" }));
 * ```
 */
export function connectOptions(
  auth: NatsAuth | undefined,
  base: ConnectionOptions = {},
): ConnectionOptions {
  const servers = base.servers === undefined
    ? []
    : Array.isArray(base.servers)
    ? base.servers
    : [base.servers];
  for (const server of servers) assertNoSecretInUrl(server);
  if (!auth) return { ...base };
  validateNatsAuth(auth);
  const encode = (text: string) => new TextEncoder().encode(text);
  const options: ConnectionOptions = { ...base };
  if (auth.password !== undefined) {
    options.user = auth.user!;
    options.pass = auth.password;
  }
  if (auth.token !== undefined) options.token = auth.token;
  if (auth.creds !== undefined) options.authenticator = credsAuthenticator(encode(auth.creds));
  if (auth.nkeySeed !== undefined) options.authenticator = nkeyAuthenticator(encode(auth.nkeySeed));
  if (auth.tls) options.tls = { ...base.tls, ...auth.tls };
  return options;
}

/**
 * Connects with {@link connectOptions} on Deno's own sockets ({@link connectNatsDeno}); a refused
 * login or an untrusted certificate becomes an error naming the server (redacted) and the
 * credentials used (see {@link explainConnectError}).
 */
export async function connectNats(
  auth: NatsAuth | undefined,
  base: ConnectionOptions,
  role: NatsRole = natsRoleOf(base.name),
): Promise<NatsConnection> {
  for (const server of [base.servers ?? []].flat()) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+\/?$/.test(server)) {
      throw new TypeError(
        `Cannot connect to NATS as the URL must look like nats://host:4222: current value is ` +
          `"${redactNatsUrl(server)}". ${URL_FIX[role]}`,
      );
    }
  }
  const options = connectOptions(auth, base);
  // A refused login is followed by a connection reset that nats.js's Node transport (still used for
  // mutual TLS, see connectNatsDeno) no longer listens for (it removed its socket handlers); without
  // this guard it surfaces as an uncaught ECONNRESET that ends the process before the explained
  // error can be reported.
  const swallowReset = (event: ErrorEvent) => {
    if ((event.error as { code?: unknown } | undefined)?.code === "ECONNRESET") event.preventDefault();
  };
  globalThis.addEventListener("error", swallowReset);
  try {
    return await connectNatsDeno(options);
  } catch (error) {
    await new Promise((resolve) => setTimeout(resolve, RESET_GRACE_MS));
    throw explainConnectError(error, [base.servers ?? "nats://127.0.0.1:4222"].flat().join(","), auth, role);
  } finally {
    globalThis.removeEventListener("error", swallowReset);
  }
}

/** Connection options that outlive a restart of the server: reconnect without limit, quickly. */
export const RECONNECT_OPTIONS: Readonly<Partial<ConnectionOptions>> = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
};

/** {@link connectNats} with {@link RECONNECT_OPTIONS}: for coordinators and workers that must ride out restarts. */
export function connectResilient(
  auth: NatsAuth | undefined,
  base: ConnectionOptions,
): Promise<NatsConnection> {
  return connectNats(auth, { ...RECONNECT_OPTIONS, ...base });
}

/** Milliseconds a failed connection may take to report its reset. */
const RESET_GRACE_MS = 250;

/**
 * Throws a `TypeError` when a NATS URL carries a password (`nats://user:secret@host`): secrets on a
 * command line are visible to every local user in `ps`. The message shows the URL redacted.
 */
export function assertNoSecretInUrl(url: string): void {
  const parsed = parseUrl(url);
  if (parsed && parsed.password !== "") {
    throw new TypeError(
      `Cannot use the NATS URL ${redactNatsUrl(url)} as it carries a password: remove it from the URL ` +
        "and pass --nats-user with --nats-password-file FILE (or SHOAL_NATS_USER / SHOAL_NATS_PASSWORD)",
    );
  }
}

/**
 * The URL as it may be logged: a password becomes `***` (`nats://user:***@host:4222`); a lone user
 * part is kept. Comma-separated server lists are redacted one by one. Text that is no URL is
 * returned as is.
 */
export function redactNatsUrl(url: string): string {
  if (url.includes(",")) return url.split(",").map((u) => redactNatsUrl(u.trim())).join(",");
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?([^/@:\s]*):([^@/\s]*)@/i, (_m, scheme, user) => {
    return `${scheme ?? ""}${user}:***@`;
  });
}

/** A one-line description of `auth` for logs: the method, the user and the TLS files, no secret. */
export function describeNatsAuth(auth: NatsAuth | undefined): string {
  if (!auth) return "no credentials";
  const method = auth.password !== undefined
    ? `user ${auth.user} with a password`
    : auth.token !== undefined
    ? "a token"
    : auth.creds !== undefined
    ? "NKey/JWT credentials"
    : auth.nkeySeed !== undefined
    ? "an NKey"
    : "no credentials";
  const tls = auth.tls
    ? `, TLS${auth.tls.caFile ? ` with CA ${auth.tls.caFile}` : ""}${
      auth.tls.certFile ? ` and client certificate ${auth.tls.certFile}` : ""
    }`
    : "";
  return method + tls;
}

/**
 * Environment variables that hand `auth` to a child process (e.g. a spawned worker) without putting
 * a secret on its command line. Creds and NKey seeds have no variable: the child needs their files.
 */
export function natsAuthEnv(auth: NatsAuth): Record<string, string> {
  if (auth.creds !== undefined || auth.nkeySeed !== undefined) {
    throw new TypeError(
      "Cannot pass NKey credentials through the environment: give the child --nats-creds or --nats-nkey-seed-file",
    );
  }
  return {
    ...(auth.user !== undefined ? { [NATS_AUTH_ENV.user]: auth.user } : {}),
    ...(auth.password !== undefined ? { [NATS_AUTH_ENV.password]: auth.password } : {}),
    ...(auth.token !== undefined ? { [NATS_AUTH_ENV.token]: auth.token } : {}),
    ...(auth.tls?.caFile !== undefined ? { [NATS_AUTH_ENV.tlsCa]: auth.tls.caFile } : {}),
  };
}

/**
 * Rewrites a connection error so that it names the server (redacted) and the credentials used:
 * nats.js says only `'Authorization Violation'`. Other errors come back unchanged.
 */
export function explainConnectError(
  error: unknown,
  url: string,
  auth: NatsAuth | undefined,
  role: NatsRole = "coordinator",
): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const server = redactNatsUrl(url);
  if (code === "AUTHORIZATION_VIOLATION" || /authorization violation/i.test(error.message)) {
    return new Error(
      `Cannot connect to NATS server ${server}: authorization violation with ${describeNatsAuth(auth)}. ` +
        "Check the user and password (or token, creds, NKey) against the server's configuration",
      { cause: error },
    );
  }
  if (/certificate|self.signed|UNABLE_TO_VERIFY/i.test(`${error.message} ${String(code)}`)) {
    return new Error(
      `Cannot connect to NATS server ${server}: TLS verification failed (${error.message}). ` +
        "Pass the CA that signed the server certificate with --nats-tls-ca FILE (or SHOAL_NATS_TLS_CA)",
      { cause: error },
    );
  }
  return new Error(`Cannot connect to NATS server ${server}: ${error.message}. ${UNREACHABLE_FIX[role]}`, {
    cause: error,
  });
}

/**
 * The role a connection name such as `shoal-worker-w1` or `shoal-coordinator-<job>` stands for, for the
 * advice in connection errors: a coordinator can drop `--nats` and start an embedded server, a worker
 * must reach the server its coordinator uses.
 */
export function natsRoleOf(connectionName: string | undefined): NatsRole {
  return connectionName?.startsWith("shoal-worker") ? "worker" : "coordinator";
}

const URL_FIX: Readonly<Record<NatsRole, string>> = {
  coordinator: "Fix --nats (or distribute.nats), or omit it to start an embedded nats-server",
  worker:
    "Fix --nats: give the URL of the NATS server the coordinator uses, e.g. --nats nats://10.0.0.5:4222",
};

const UNREACHABLE_FIX: Readonly<Record<NatsRole, string>> = {
  coordinator: "Start nats-server there (nats-server -p PORT), fix --nats (or distribute.nats), " +
    "or omit it to start an embedded server",
  worker: "Check the --nats URL (host and port of the server the coordinator uses) and that the " +
    "coordinator or its nats-server is running; a coordinator without --nats serves only its own " +
    "local workers",
};

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

function parseUrl(url: string): URL | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`;
  try {
    return new URL(withScheme);
  } catch {
    return undefined;
  }
}
