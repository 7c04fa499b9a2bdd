/**
 * Data-plane addresses as the coordinator announces them and workers dial them:
 *
 * - `unix:/path/to/socket` — a Unix domain socket, for workers on the coordinator's host;
 * - `tcp://host:port` — plain TCP;
 * - `tls://host:port` — TCP with TLS (whenever the NATS connection uses TLS).
 *
 * @module
 */

/** A parsed data-plane address. */
export type DataAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp" | "tls"; hostname: string; port: number };

/** The kind of a data-plane address (`unix`, `tcp` or `tls`), or `undefined` when it is none. */
function dataAddressKind(text: string): DataAddress["kind"] | undefined {
  try {
    return parseDataAddress(text).kind;
  } catch {
    return undefined;
  }
}

/** Parses an announced address; throws a `TypeError` naming the value and the accepted forms. */
export function parseDataAddress(text: string): DataAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path.startsWith("/")) return { kind: "unix", path };
  }
  const m = /^(tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d{1,5})$/.exec(text);
  if (m && Number(m[3]) <= 65535) {
    return { kind: m[1] as "tcp" | "tls", hostname: m[2]!.replace(/^\[|\]$/g, ""), port: Number(m[3]) };
  }
  throw new TypeError(
    `Cannot use the data-plane address ${
      JSON.stringify(text)
    }: expected unix:/path, tcp://host:port or tls://host:port`,
  );
}

/** The text form of an address. */
export function formatDataAddress(address: DataAddress): string {
  if (address.kind === "unix") return `unix:${address.path}`;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${address.kind}://${host}:${address.port}`;
}

/** A listen address of `--data-listen`: `HOST:PORT` (port 0 picks a free one). */
/**
 * True when a ring node of the given kind dials `address`: a TLS ring (a data plane over TLS) only
 * `tls://` addresses, a plain one only `tcp://`, both Unix sockets (which stay on the host).
 */
export function ringDials(address: string, tls: boolean): boolean {
  const kind = dataAddressKind(address);
  return kind === "unix" || kind === (tls ? "tls" : "tcp");
}

/** True for a host that means every interface (0.0.0.0, ::): one a peer cannot dial. */
export function isWildcardHost(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::";
}

/** True for a loopback host (127.x, localhost, ::1): reachable from this machine only. */
export function isLoopbackHost(hostname: string): boolean {
  return /^(127\.|localhost$|::1$|\[::1\]$)/.test(hostname);
}

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** Parses `HOST:PORT` (`[::]:7070` for IPv6); throws a `TypeError` naming the value and the form. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) {
    throw new TypeError(
      `Cannot listen for the data plane on ${JSON.stringify(text)}: expected HOST:PORT, e.g. 0.0.0.0:7070 ` +
        "(all interfaces) or 127.0.0.1:0 (loopback, any free port)",
    );
  }
  return { hostname: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}
