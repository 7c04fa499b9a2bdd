/**
 * What a distributed run starts before its first step: the NATS connection (to an existing server,
 * or to a private nats-server with one user per role), the data-plane listener with its job secret,
 * (the local worker processes of an embedded run come from launcher.ts).
 *
 * @module
 */
import type { NatsConnection } from "npm:nats@2.29.3";
import {
  connectResilient,
  DEFAULT_MAX_PENDING,
  localCredentials,
  type NatsAuth,
  natsAuthEnv,
  type NatsServer,
  natsServerConfig,
  startNatsServer,
} from "../../shared/io/nats/mod.ts";
import {
  type DataListener,
  type DataTls,
  type FrameChannel,
  listenDataPlane,
  newJobSecret,
  parseListenAddress,
} from "../../shared/io/data_plane/mod.ts";
import type { Transport } from "../../shared/io/protocol/mod.ts";

/** The control plane of a run: its connection, and the embedded server when there is one. */
export interface ControlPlane {
  nc: NatsConnection;
  url: string;
  /** The embedded server; `undefined` with an existing server. */
  server: NatsServer | undefined;
  /** Environment handing local workers their credentials (embedded server only). */
  workerEnv: Record<string, string>;
  /** True when clients reach the server over TLS. */
  tls: boolean;
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  job: string;
  /** An existing server; without it a private one is started. */
  nats?: string;
  auth?: NatsAuth;
  /** Largest message of the embedded server. */
  maxPayload: number;
}

/** Connects to the server, starting a private one (each role with its own permissions) without `nats`. */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  let server: NatsServer | undefined;
  let url = opts.nats;
  let auth = opts.auth;
  let workerEnv: Record<string, string> = {};
  try {
    if (url === undefined) {
      const creds = localCredentials();
      server = await startNatsServer({
        configText: natsServerConfig({
          maxPayload: opts.maxPayload,
          maxPending: DEFAULT_MAX_PENDING,
          users: creds.users,
        }),
      });
      url = server.url;
      auth = creds.coordinator;
      workerEnv = natsAuthEnv(creds.worker);
    }
    const nc = await connectResilient(auth, { servers: url, name: `shoal-coordinator-${opts.job}` });
    const tls = auth?.tls !== undefined || /^tls:\/\//.test(url) || nc.info?.tls_required === true;
    return { nc, url, server, workerEnv, tls };
  } catch (error) {
    await server?.stop();
    throw error;
  }
}

/** Certificate and key files of the data plane's TLS listener. */
export interface DataTlsFiles {
  certFile: string;
  keyFile: string;
}

/** Options of {@link startDataPlane}. */
export interface DataPlaneOptions {
  job: string;
  transport: Transport;
  /** `HOST:PORT` of the TCP listener. */
  listen: string;
  /** What workers dial for it, when not the listen address. */
  advertise?: string;
  /** Also offer a Unix socket (workers on this host). */
  unix: boolean;
  /** TLS material; required when the control plane uses TLS. */
  tls?: DataTlsFiles;
  /** True when the NATS connection uses TLS: the data plane must too. */
  natsTls: boolean;
  maxBodyBytes: number;
  refusal: (worker: string) => string | undefined;
  onChannel: (channel: FrameChannel, worker: string, role: "work" | "sync") => void;
  onRefused: (peer: string, reason: string) => void;
}

/** The data plane of a run, or `undefined` with `transport: "nats"`. */
export interface DataPlane {
  listener: DataListener;
  secret: string;
}

/** Starts the data-plane listener with a fresh job secret (none with `transport: "nats"`). */
export async function startDataPlane(opts: DataPlaneOptions): Promise<DataPlane | undefined> {
  if (opts.transport === "nats") return undefined;
  if (opts.natsTls && !opts.tls) {
    throw new TypeError(
      "Cannot start the data plane in plain text as the NATS connection uses TLS: pass --data-tls-cert FILE " +
        "--data-tls-key FILE (distribute.dataTls: { certFile, keyFile }), a certificate for the advertised data " +
        "address signed by the CA the workers trust, or use --transport nats",
    );
  }
  let tls: DataTls | undefined;
  if (opts.tls) {
    try {
      tls = {
        cert: await Deno.readTextFile(opts.tls.certFile),
        key: await Deno.readTextFile(opts.tls.keyFile),
      };
    } catch (error) {
      throw new Error(
        `Cannot read the data plane's TLS certificate ${opts.tls.certFile} or key ${opts.tls.keyFile}: ${
          error instanceof Error ? error.message : error
        }; check the paths`,
      );
    }
  }
  const secret = newJobSecret();
  const listener = await listenDataPlane({
    job: opts.job,
    secret,
    listen: parseListenAddress(opts.listen),
    ...(opts.advertise !== undefined ? { advertise: opts.advertise } : {}),
    unix: opts.unix,
    ...(tls ? { tls } : {}),
    maxBodyBytes: opts.maxBodyBytes,
    refusal: opts.refusal,
    onChannel: (channel, admitted) => {
      // Ring connections go from worker to worker, never to the coordinator.
      if (admitted.role === "ring") return channel.close("the coordinator takes no ring connection");
      opts.onChannel(channel, admitted.worker, admitted.role);
    },
    onRefused: opts.onRefused,
  });
  return { listener, secret };
}
