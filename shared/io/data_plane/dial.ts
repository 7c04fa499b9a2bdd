/**
 * The worker's way onto the data plane: try the coordinator's announced addresses in order (its Unix
 * socket first, which only a worker on the same host can reach), each within a short timeout, and
 * keep the first that completes the handshake.
 *
 * @module
 */
import { type DataAddress, formatDataAddress, parseDataAddress } from "./address.ts";
import { FrameChannel } from "./channel.ts";
import { type ChannelRole, DataPlaneAuthError, offerHandshake } from "./handshake.ts";

/** Milliseconds to reach one address and finish its handshake. @default */
export const DIAL_TIMEOUT_MS = 3000;

/** Options of {@link dialDataPlane}. */
export interface DialOptions {
  job: string;
  secret: string;
  worker: string;
  role: ChannelRole;
  /** PEM CA certificates that may sign the coordinator's TLS certificate (`tls://` addresses). */
  caCerts?: string[];
  /** Largest frame body accepted once connected. */
  maxBodyBytes: number;
  /** Milliseconds per address. @default {DIAL_TIMEOUT_MS} */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** No announced address could be reached; `attempts` says why for each. */
export class DataPlaneUnreachableError extends Error {
  override name = "DataPlaneUnreachableError";
  constructor(message: string, readonly attempts: readonly string[]) {
    super(message);
  }
}

/** A connected, authenticated channel and the address it reached. */
export interface Dialed {
  channel: FrameChannel;
  address: string;
}

/**
 * Connects to the first reachable address of `addresses`. A refused handshake (wrong secret, other
 * job) throws a {@link DataPlaneAuthError} at once: the next address would refuse it too.
 */
export async function dialDataPlane(addresses: readonly string[], opts: DialOptions): Promise<Dialed> {
  const attempts: string[] = [];
  for (const text of addresses) {
    opts.signal?.throwIfAborted();
    const address = parseDataAddress(text);
    let channel: FrameChannel | undefined;
    try {
      channel = await open(address, opts);
      await offerHandshake(channel, { ...opts, timeoutMs: opts.timeoutMs ?? DIAL_TIMEOUT_MS });
      channel.maxBodyBytes = opts.maxBodyBytes;
      return { channel, address: text };
    } catch (error) {
      channel?.close("the handshake failed");
      if (error instanceof DataPlaneAuthError && /refused|did not prove/.test(error.message)) throw error;
      attempts.push(`${text}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new DataPlaneUnreachableError(
    `Cannot reach the coordinator's data plane at ${addresses.join(", ") || "(no address announced)"}: ${
      attempts.join("; ")
    }`,
    attempts,
  );
}

async function open(address: DataAddress, opts: DialOptions): Promise<FrameChannel> {
  const timeoutMs = opts.timeoutMs ?? DIAL_TIMEOUT_MS;
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
  const handshakeLimit = { maxBodyBytes: 0, peer: formatDataAddress(address) };
  if (address.kind === "unix") {
    const conn = await Deno.connect({ transport: "unix", path: address.path });
    return new FrameChannel(conn, { ...handshakeLimit, encrypted: false });
  }
  const tcp = await Deno.connect({ hostname: address.hostname, port: address.port, signal });
  tcp.setNoDelay(true);
  if (address.kind === "tcp") return new FrameChannel(tcp, { ...handshakeLimit, encrypted: false });
  const tls = await Deno.startTls(tcp, {
    hostname: address.hostname,
    ...(opts.caCerts ? { caCerts: opts.caCerts } : {}),
  });
  await withSignal(tls.handshake(), signal, () => tls.close());
  return new FrameChannel(tls, { ...handshakeLimit, encrypted: true });
}

async function withSignal<T>(promise: Promise<T>, signal: AbortSignal, cancel: () => void): Promise<T> {
  const onAbort = () => cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await promise;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
