/**
 * nats-server configuration with per-role permissions, for the embedded server
 * (`startNatsServer({ configText: natsServerConfig(...) })`) and for Kubernetes (render the text into
 * a ConfigMap; secrets may stay in the pod environment with `{ env: "NAME" }`, which the server
 * resolves itself).
 *
 * Permissions follow the protocol in shared/io/protocol/messages.ts (`J` is any job id, `N` any
 * worker name, `V` a weights version):
 *
 * | role | may publish | may subscribe |
 * | --- | --- | --- |
 * | coordinator | `shoal.J.hello`, `shoal.J.weights`, `shoal.J.w.N`, `shoal.J.w.N.alive`, `shoal.J.end`, `shoal.J.heartbeat`, `shoal.J.sync.V`, `_INBOX.>` | `shoal.J.join`, `shoal.J.ready`, `shoal.J.part`, `_INBOX.>` |
 * | worker | `shoal.J.join`, `shoal.J.ready`, `shoal.J.part`, `_INBOX.>` | `shoal.J.hello`, `shoal.J.weights`, `shoal.J.w.N`, `shoal.J.w.N.alive`, `shoal.J.end`, `shoal.J.heartbeat`, `shoal.J.sync.V`, `_INBOX.>` |
 *
 * The slice exchange of a step goes through the coordinator: workers publish their parts on
 * `shoal.J.part`, the coordinator publishes the gathered parts and aborts on `shoal.J.sync.V`.
 * `_INBOX.>` carries request replies both ways (a worker's gradient is the reply to the coordinator's
 * request; the coordinator's join answer is the reply to a worker's request). Anything else is
 * refused by the server with a permissions violation: a worker credential cannot announce jobs,
 * publish weights, send work to other workers or end a job.
 *
 * @module
 */
import { DEFAULT_MAX_PENDING } from "./server.ts";

/** The two kinds of client. */
export type NatsRole = "coordinator" | "worker";

/** Subjects one role may publish and subscribe to (nats wildcards). */
export interface RolePermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/** What the coordinator sends and workers receive: the job's control subjects and the gathered slice exchange. */
const CONTROL_SUBJECTS = [
  "shoal.*.hello",
  "shoal.*.weights",
  "shoal.*.w.*",
  "shoal.*.w.*.alive",
  "shoal.*.end",
  "shoal.*.heartbeat",
  "shoal.*.sync.*",
];

/** What workers send and the coordinator receives. */
const WORKER_SUBJECTS = ["shoal.*.join", "shoal.*.ready", "shoal.*.part"];

/** What each role may do; see the module table. Both use request/reply inboxes. */
export const ROLE_PERMISSIONS: Readonly<Record<NatsRole, RolePermissions>> = {
  coordinator: {
    publish: [...CONTROL_SUBJECTS, "_INBOX.>"],
    subscribe: [...WORKER_SUBJECTS, "_INBOX.>"],
  },
  worker: {
    publish: [...WORKER_SUBJECTS, "_INBOX.>"],
    subscribe: [...CONTROL_SUBJECTS, "_INBOX.>"],
  },
};

/**
 * A secret in the configuration: the literal value (a bcrypt hash `$2a$…` is accepted by the server
 * too), or the name of an environment variable of the server process (`{ env: "WORKER_PASSWORD" }`
 * renders as `$WORKER_PASSWORD`, resolved by nats-server when it starts).
 */
export type SecretRef = string | { env: string };

/** One user of the server: a user name with a password, or an NKey public key (`U…`). */
export type NatsUserSpec =
  | { role: NatsRole; user: string; password: SecretRef }
  | { role: NatsRole; nkey: string };

/** Server TLS: certificate and key, and the CA that signs client certificates for mutual TLS. */
export interface NatsServerTls {
  certFile: string;
  keyFile: string;
  /** CA file; with `verify`, clients must present a certificate it signed. */
  caFile?: string;
  /** Require client certificates (mutual TLS). @default false */
  verify?: boolean;
  /** Seconds for the TLS handshake. @default 2 */
  timeoutSeconds?: number;
}

/** Options of {@link natsServerConfig}. */
export interface NatsServerConfigOptions {
  /** Users with their roles; mutually exclusive with `token`. Without both, the server is open. */
  users?: readonly NatsUserSpec[];
  /** A single shared token (no roles: every client may do everything). */
  token?: SecretRef;
  /** TLS for client connections. */
  tls?: NatsServerTls;
  /** Largest message in bytes; at most `maxPending`. */
  maxPayload: number;
  /** Bytes held for one slow client. @default {DEFAULT_MAX_PENDING} (64 MiB) */
  maxPending?: number;
  /** Seconds a write to a client may block; must exceed the longest step. @default 60 */
  writeDeadlineSeconds?: number;
  /** Client port; the embedded server overrides it on its command line. @default the server's 4222 */
  port?: number;
  /** JetStream with its store in this directory. @default off */
  jetstream?: { storeDir: string };
}

/**
 * Renders a nats-server configuration file.
 *
 * @example Embedded server with two roles
 * ```ts
 * const text = natsServerConfig({
 *   maxPayload: 16 * 1024 * 1024,
 *   users: [
 *     { role: "coordinator", user: "coordinator", password: coordinatorPassword },
 *     { role: "worker", user: "worker", password: { env: "SHOAL_WORKER_PASSWORD" } },
 *   ],
 * });
 * await using server = await startNatsServer({ configText: text });
 * ```
 */
export function natsServerConfig(options: NatsServerConfigOptions): string {
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const writeDeadline = options.writeDeadlineSeconds ?? 60;
  checkInteger("maxPending", maxPending, 1, DEFAULT_MAX_PENDING);
  checkInteger("maxPayload", options.maxPayload, 1, maxPending);
  if (!(writeDeadline > 0)) {
    throw new RangeError(
      `Cannot render the NATS configuration as writeDeadlineSeconds must be > 0: current value is ${writeDeadline}`,
    );
  }
  if (options.port !== undefined) checkInteger("port", options.port, 1, 65535);
  const lines = [
    ...(options.port === undefined ? [] : [`port: ${options.port}`]),
    `max_payload: ${options.maxPayload}`,
    `max_pending: ${maxPending}`,
    `write_deadline: "${writeDeadline}s"`,
  ];
  if (options.jetstream) lines.push(`jetstream { store_dir: ${quote(options.jetstream.storeDir)} }`);
  if (options.tls) lines.push(tlsBlock(options.tls));
  if (options.users !== undefined && options.token !== undefined) {
    throw new TypeError(
      "Cannot render the NATS configuration with both users and token: nats-server allows one; " +
        "use users to get per-role permissions",
    );
  }
  if (options.token !== undefined) lines.push(`authorization {\n  token: ${secret(options.token)}\n}`);
  if (options.users !== undefined) lines.push(usersBlock(options.users));
  return lines.join("\n") + "\n";
}

function usersBlock(users: readonly NatsUserSpec[]): string {
  if (users.length === 0) {
    throw new RangeError(
      "Cannot render the NATS configuration with an empty users list: add a user or omit users",
    );
  }
  const seen = new Set<string>();
  const entries = users.map((u) => {
    const id = "user" in u ? u.user : u.nkey;
    if (seen.has(id)) {
      throw new TypeError(`Cannot render the NATS configuration as user ${id} appears twice: keep one entry`);
    }
    seen.add(id);
    if (!(u.role in ROLE_PERMISSIONS)) {
      throw new TypeError(
        `Cannot render the NATS configuration as role must be coordinator or worker: current value is ${u.role}`,
      );
    }
    let login: string;
    if ("user" in u) {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(u.user)) {
        throw new TypeError(
          `Cannot render the NATS configuration as a user name must be 1-64 letters, digits, '_', '.', '-': ` +
            `current value is ${JSON.stringify(u.user)}`,
        );
      }
      login = `user: ${quote(u.user)}, password: ${secret(u.password)}`;
    } else {
      if (!/^U[A-Z2-7]{55}$/.test(u.nkey)) {
        throw new TypeError(
          `Cannot render the NATS configuration as nkey must be a user public key (56 characters starting with U): ` +
            `current value is ${JSON.stringify(u.nkey)}`,
        );
      }
      login = `nkey: ${quote(u.nkey)}`;
    }
    const perms = ROLE_PERMISSIONS[u.role];
    return `    { ${login},\n      permissions: {\n        publish: { allow: ${list(perms.publish)} },\n` +
      `        subscribe: { allow: ${list(perms.subscribe)} }\n      } }`;
  });
  return `authorization {\n  users: [\n${entries.join(",\n")}\n  ]\n}`;
}

function tlsBlock(tls: NatsServerTls): string {
  if (tls.verify && tls.caFile === undefined) {
    throw new TypeError(
      "Cannot render the NATS configuration with tls.verify and no tls.caFile: the server needs the CA " +
        "that signs client certificates",
    );
  }
  const fields = [
    `cert_file: ${quote(tls.certFile)}`,
    `key_file: ${quote(tls.keyFile)}`,
    ...(tls.caFile === undefined ? [] : [`ca_file: ${quote(tls.caFile)}`]),
    ...(tls.verify ? ["verify: true"] : []),
    `timeout: ${tls.timeoutSeconds ?? 2}`,
  ];
  return `tls {\n  ${fields.join("\n  ")}\n}`;
}

function secret(value: SecretRef): string {
  if (typeof value === "string") {
    if (value === "") {
      throw new TypeError("Cannot render the NATS configuration with an empty password or token");
    }
    return quote(value);
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value.env)) {
    throw new TypeError(
      `Cannot render the NATS configuration as an environment variable name must match [A-Za-z_][A-Za-z0-9_]*: ` +
        `current value is ${JSON.stringify(value.env)}`,
    );
  }
  return `$${value.env}`;
}

/** A double-quoted configuration string (JSON escapes, which the server's parser reads). */
function quote(text: string): string {
  return JSON.stringify(text);
}

function list(subjects: readonly string[]): string {
  return `[${subjects.map(quote).join(", ")}]`;
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot render the NATS configuration as ${name} must be an integer in [${min}, ${max}]: current value is ${value}`,
    );
  }
}

/**
 * Fresh random credentials for a private server: a `coordinator` and a `worker` user with 32-byte
 * random passwords, the users to render with {@link natsServerConfig}, and each side's client auth.
 */
export function localCredentials(): {
  users: NatsUserSpec[];
  coordinator: { user: string; password: string };
  worker: { user: string; password: string };
} {
  const password = () => {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "");
  };
  const coordinator = { user: "coordinator", password: password() };
  const worker = { user: "worker", password: password() };
  return {
    users: [{ role: "coordinator", ...coordinator }, { role: "worker", ...worker }],
    coordinator,
    worker,
  };
}
