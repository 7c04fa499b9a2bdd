/**
 * The coordinator's data-plane listener: a Unix socket in a private directory (for workers on this
 * host) and a TCP port (TLS when certificates are given), each connection admitted only after the
 * handshake of handshake.ts proved the job secret. Unauthenticated peers can send nothing but the
 * handshake: their frames may carry no body.
 *
 * @module
 */
import { formatDataAddress, isWildcardHost, type ListenAddress } from "./address.ts";
import { FrameChannel } from "./channel.ts";
import { acceptHandshake, type Admitted, HANDSHAKE_TIMEOUT_MS } from "./handshake.ts";

/** PEM certificate and key of the listener's TLS side. */
export interface DataTls {
  cert: string;
  key: string;
}

/** Options of {@link listenDataPlane}. */
export interface DataListenerOptions {
  job: string;
  secret: string;
  /** TCP address to listen on; none for a Unix socket only. */
  listen?: ListenAddress;
  /** Host (or `host:port`) workers dial for the TCP listener. @default the listen host, or this host's name for 0.0.0.0 / :: */
  advertise?: string;
  /** Also listen on a Unix socket in a private temporary directory. @default true */
  unix?: boolean;
  /** Certificate and key: the TCP listener speaks TLS (`tls://` addresses). */
  tls?: DataTls;
  /** What a failed listen's error tells the user to change. @default the coordinator's flags */
  fix?: string;
  /** Largest frame body of an authenticated peer. */
  maxBodyBytes: number;
  /** Why a worker may not connect now, or `undefined`. */
  refusal?: (worker: string) => string | undefined;
  /** Each authenticated connection. */
  onChannel: (channel: FrameChannel, admitted: Admitted) => void;
  /** Each refused connection, with the peer and the reason. */
  onRefused: (peer: string, reason: string) => void;
}

/** A running listener; {@link addresses} is what workers are told to dial, in order. */
export interface DataListener extends AsyncDisposable {
  readonly addresses: readonly string[];
  /** Stops accepting (connections already made stay open) and removes the Unix socket. */
  close(): Promise<void>;
}

/** Starts the listeners; resolves once they accept. */
export async function listenDataPlane(opts: DataListenerOptions): Promise<DataListener> {
  const listeners: { listener: Deno.Listener; encrypted: boolean }[] = [];
  const addresses: string[] = [];
  let dir: string | undefined;
  try {
    if (opts.unix ?? true) {
      dir = await Deno.makeTempDir({ prefix: "shoal-data-" });
      await Deno.chmod(dir, 0o700);
      const path = `${dir}/data.sock`;
      listeners.push({ listener: Deno.listen({ transport: "unix", path }), encrypted: false });
      addresses.push(formatDataAddress({ kind: "unix", path }));
    }
    if (opts.listen) {
      const { hostname, port } = opts.listen;
      const listener = opts.tls
        ? Deno.listenTls({ hostname, port, cert: opts.tls.cert, key: opts.tls.key })
        : Deno.listen({ hostname, port });
      listeners.push({ listener, encrypted: opts.tls !== undefined });
      const bound = (listener.addr as Deno.NetAddr).port;
      addresses.push(advertised(opts.advertise, hostname, bound, opts.tls ? "tls" : "tcp"));
    }
  } catch (error) {
    for (const { listener } of listeners) listener.close();
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(
      `Cannot listen for the data plane${
        opts.listen ? ` on ${opts.listen.hostname}:${opts.listen.port}` : ""
      }: ${error instanceof Error ? error.message : error}. ${
        opts.fix ?? "Pick another --data-listen HOST:PORT, or --transport nats"
      }`,
      { cause: error },
    );
  }
  const loops = listeners.map(({ listener, encrypted }) => acceptLoop(listener, encrypted, opts));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const { listener } of listeners) {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.all(loops);
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return { addresses, close, [Symbol.asyncDispose]: close };
}

function advertised(advertise: string | undefined, hostname: string, port: number, scheme: string): string {
  if (advertise !== undefined) {
    const withPort = /:\d+$/.test(advertise) && !/^[0-9a-fA-F:]+$/.test(advertise)
      ? advertise
      : `${advertise}:${port}`;
    return `${scheme}://${withPort}`;
  }
  const host = isWildcardHost(hostname) ? Deno.hostname() : hostname;
  return formatDataAddress({ kind: scheme as "tcp" | "tls", hostname: host, port });
}

async function acceptLoop(
  listener: Deno.Listener,
  encrypted: boolean,
  opts: DataListenerOptions,
): Promise<void> {
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      return; // closed
    }
    void admit(conn, encrypted, opts);
  }
}

async function admit(conn: Deno.Conn, encrypted: boolean, opts: DataListenerOptions): Promise<void> {
  const remote = conn.remoteAddr;
  const peer = remote.transport === "tcp"
    ? `${remote.hostname}:${remote.port}`
    : "a local process (Unix socket)";
  if (remote.transport === "tcp" && !encrypted) (conn as Deno.TcpConn).setNoDelay(true);
  const channel = new FrameChannel(conn, { maxBodyBytes: 0, encrypted, peer });
  try {
    if (encrypted) {
      const timer = setTimeout(() => channel.close("no TLS handshake in time"), HANDSHAKE_TIMEOUT_MS);
      try {
        await (conn as Deno.TlsConn).handshake();
      } finally {
        clearTimeout(timer);
      }
    }
    const admitted = await acceptHandshake(channel, {
      job: opts.job,
      secret: opts.secret,
      ...(opts.refusal ? { refusal: opts.refusal } : {}),
    });
    channel.maxBodyBytes = opts.maxBodyBytes;
    opts.onChannel(channel, admitted);
  } catch (error) {
    channel.close("refused");
    opts.onRefused(peer, error instanceof Error ? error.message : String(error));
  }
}
