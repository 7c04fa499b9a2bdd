/**
 * A nats.js transport on Deno's own sockets (`Deno.connect`, `Deno.startTls`, `Deno.connectTls`)
 * instead of nats.js's Node transport, which under Deno runs through the `node:net` compatibility
 * layer and moves a 2 MB message in small chunks with one event-loop turn each.
 *
 * Reads go into a large buffer ({@link READ_BUFFER_BYTES}); a read that fills most of it is handed to
 * the parser as it is (the parser may keep a view of it as a message body, so a fresh buffer is taken
 * for the next read), a small one is copied out. Frames to send are written in order, unchanged, by
 * one writer loop; small frames waiting together are joined into one write.
 *
 * Mutual TLS when the server announces TLS in its plain-text INFO (the NATS default) needs a client
 * certificate during `Deno.startTls`, which Deno does not offer: such connections run on nats.js's
 * Node transport, everything else (plain TCP, TLS with a CA, mutual TLS with `handshakeFirst`) on
 * Deno's sockets.
 *
 * @module
 */
import {
  checkOptions,
  type ConnectionOptions,
  type Deferred,
  deferred,
  ErrorCode,
  extractProtocolMessage,
  INFO,
  NATS_JS_VERSION,
  type NatsConnection,
  NatsConnectionImpl,
  NatsError,
  NodeTransport,
  quietParseErrors,
  type Server,
  type ServerInfo,
  setTransportFactory,
  type TlsOptions,
  type Transport,
} from "./nats_internals.ts";

/** Bytes asked of the socket per read. */
export const READ_BUFFER_BYTES = 1 << 20;

/** Frames waiting to be sent are joined into one write while they total less than this. */
const JOIN_BELOW_BYTES = 64 * 1024;

/**
 * A nats.js `Transport` on Deno's TCP and TLS sockets. nats.js makes one per connection attempt
 * (reconnects included) through the factory that {@link connectNatsDeno} installs.
 */
export class DenoTransport implements Transport {
  /** Client library name sent in CONNECT. */
  readonly lang = "nats.js";
  /** Client library version sent in CONNECT. */
  readonly version = NATS_JS_VERSION;
  /** The error that ended the connection, if one did. */
  closeError?: Error;

  #conn?: Deno.Conn | Deno.TlsConn;
  #fallback?: Transport;
  #options: ConnectionOptions = {};
  #encrypted = false;
  #connected = false;
  #done = false;
  #peeked?: Uint8Array;
  #framer = new MessageFramer();
  #queue: Uint8Array[] = [];
  #writing?: Promise<void>;
  #closedNotification: Deferred<void | Error> = deferred<void | Error>();

  /** True once the connection has ended. */
  get isClosed(): boolean {
    return this.#fallback ? this.#fallback.isClosed : this.#done;
  }

  /**
   * Dials `server`, reads its INFO, checks it against `options`, and upgrades to TLS when the server
   * requires it or offers it and `options.tls` is not `null`.
   */
  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    this.#options = options;
    const tls = options.tls;
    if (needsNodeTls(tls)) {
      this.#fallback = new NodeTransport();
      await this.#fallback.connect(server, options);
      return;
    }
    const tlsHost = server.tlsName || server.hostname;
    try {
      let info: ServerInfo;
      if (tls?.handshakeFirst === true) {
        const conn = await Deno.connectTls({
          hostname: server.hostname,
          port: server.port,
          ...await loadTlsFiles(tls),
        });
        this.#conn = conn;
        await conn.handshake();
        this.#encrypted = true;
        info = await this.#peekInfo(conn);
      } else {
        const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
        tcp.setNoDelay(true);
        this.#conn = tcp;
        info = await this.#peekInfo(tcp);
        if (info.tls_required === true || (info.tls_available === true && tls !== null)) {
          const { caCerts } = await loadTlsFiles(tls ?? {});
          const conn = await Deno.startTls(tcp, { hostname: tlsHost, ...(caCerts ? { caCerts } : {}) });
          this.#conn = conn;
          await conn.handshake();
          this.#encrypted = true;
        }
      }
      checkOptions(info, options);
      if (info.tls_required === true && !this.#encrypted) {
        throw new NatsError("tls", ErrorCode.ServerOptionNotAvailable);
      }
      this.#connected = true;
    } catch (error) {
      try {
        this.#conn?.close();
      } catch {
        // already closed
      }
      this.#conn = undefined;
      if (error instanceof Deno.errors.ConnectionRefused) {
        throw NatsError.errorForCode(ErrorCode.ConnectionRefused, error);
      }
      throw error;
    }
  }

  /** Reads until the server's INFO line is complete; keeps the bytes for the parser. */
  async #peekInfo(conn: Deno.Conn | Deno.TlsConn): Promise<ServerInfo> {
    const buffer = new Uint8Array(64 * 1024);
    let filled = 0;
    while (true) {
      if (filled === buffer.length) {
        throw new NatsError(
          `the server sent more than ${buffer.length} bytes without an INFO line`,
          ErrorCode.BadJson,
        );
      }
      const n = await conn.read(buffer.subarray(filled));
      if (n === null) {
        throw NatsError.errorForCode(
          ErrorCode.ConnectionRefused,
          new Error("the server closed the connection before it sent INFO"),
        );
      }
      filled += n;
      const line = extractProtocolMessage(buffer.subarray(0, filled));
      if (line === "") continue;
      const match = INFO.exec(line);
      if (!match) throw new Error(`unexpected response from server: ${line.slice(0, 80)}`);
      this.#peeked = buffer.slice(0, filled);
      return JSON.parse(match[1]!) as ServerInfo;
    }
  }

  /** The bytes received, in order, until the connection ends. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.#fallback ? this.#fallback[Symbol.asyncIterator]() : this.#read();
  }

  async *#read(): AsyncIterableIterator<Uint8Array> {
    let finished = false;
    try {
      if (this.#peeked) {
        const peeked = this.#peeked;
        this.#peeked = undefined;
        this.#framer.scan(peeked);
        yield peeked;
      }
      const read = (buffer: Uint8Array) => this.#done ? Promise.resolve(null) : this.#readInto(buffer);
      for await (const chunk of readChunks(read, this.#framer)) {
        if (this.#options.debug) console.info(`> ${new TextDecoder().decode(chunk.subarray(0, 256))}`);
        yield chunk;
      }
      finished = true;
    } finally {
      // nats.js stops reading when its parser throws (corrupt bytes, or a subscription callback
      // that threw). The socket would then stay open and unread and the connection hang: end it,
      // so that nats.js reconnects.
      if (!finished && !this.#done) {
        this.#closed(new NatsError("the client stopped reading this connection", ErrorCode.Disconnect));
      }
    }
  }

  /** One read into `buffer`; `null` once the connection has ended (and it is then closed). */
  async #readInto(buffer: Uint8Array): Promise<number | null> {
    try {
      const n = await this.#conn?.read(buffer) ?? null;
      if (n === null) this.#closed(undefined);
      return n;
    } catch (error) {
      this.#closed(this.#done ? undefined : asError(error));
      return null;
    }
  }

  /** True when the connection runs over TLS. */
  isEncrypted(): boolean {
    return this.#fallback ? this.#fallback.isEncrypted() : this.#encrypted;
  }

  /** Queues `frame` to be written after the frames before it; nats.js does not touch it again. */
  send(frame: Uint8Array): void {
    if (this.#fallback) return this.#fallback.send(frame);
    if (this.#done || !this.#conn) return;
    if (this.#options.debug) console.info(`< ${new TextDecoder().decode(frame)}`);
    this.#queue.push(frame);
    this.#writing ??= this.#writeQueued();
  }

  async #writeQueued(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#conn) {
        const frame = this.#takeFrame();
        for (let sent = 0; sent < frame.length;) sent += await this.#conn.write(frame.subarray(sent));
      }
    } catch (error) {
      this.#queue = [];
      this.#closed(this.#done ? undefined : asError(error));
    } finally {
      this.#writing = undefined;
    }
  }

  /** The next frame to write: the first queued one, joined with the small ones behind it. */
  #takeFrame(): Uint8Array {
    const queue = this.#queue;
    let count = 0;
    let bytes = 0;
    while (count < queue.length && bytes + queue[count]!.length <= JOIN_BELOW_BYTES) {
      bytes += queue[count]!.length;
      count++;
    }
    if (count <= 1) return queue.shift()!;
    const joined = new Uint8Array(bytes);
    let offset = 0;
    for (const frame of queue.splice(0, count)) {
      joined.set(frame, offset);
      offset += frame.length;
    }
    return joined;
  }

  /**
   * Ends the connection for good. As with nats.js's Node transport, frames not yet written are
   * dropped: `flush()` or `drain()` the connection before closing it to deliver them.
   */
  close(err?: Error): Promise<void> {
    if (this.#fallback) return this.#fallback.close(err);
    this.#closed(err);
    return Promise.resolve();
  }

  /** Drops the connection (a stale one); nats.js then reconnects. */
  disconnect(): void {
    if (this.#fallback) return this.#fallback.disconnect();
    this.#closed(undefined);
  }

  /** Resolves when the connection has ended, with the error that ended it, if any. */
  closed(): Promise<void | Error> {
    return this.#fallback ? this.#fallback.closed() : this.#closedNotification;
  }

  /** Nothing to discard: reads are not throttled. */
  discard(): void {}

  #closed(err: Error | undefined): void {
    if (!this.#connected) return;
    if (this.#done) return;
    this.#done = true;
    this.closeError = err;
    this.#queue = [];
    try {
      this.#conn?.close();
    } catch {
      // already closed by the peer
    }
    this.#conn = undefined;
    this.#closedNotification.resolve(err);
  }
}

/** Where a large message starts in a chunk, and its length (protocol line, body and CRLF). */
export interface MessageSplit {
  /** Offset of the message's `MSG`/`HMSG` line in the chunk. */
  start: number;
  /** Bytes from that line to the end of the message, more than the chunk holds. */
  length: number;
}

/** Messages shorter than this are left to nats.js's parser to reassemble. */
export const LARGE_MESSAGE_BYTES = 64 * 1024;

/** Longest protocol line read; a longer `MSG` line stops the framing (the bytes still pass unchanged). */
const MAX_LINE_BYTES = 4096;

/** Largest message body nats-server can send (its hard cap on `max_payload`). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const MSG_LINE = /^H?MSG\s.*\s(\d+)$/i;

/**
 * Follows the framing of the server-to-client NATS protocol (lines ending in CRLF; `MSG` and `HMSG`
 * lines followed by a body of the size the line states and a CRLF) across chunks, to find a large
 * message that a chunk holds only the start of. It never changes bytes: a wrong guess only costs
 * speed. It stops following (for good) at a line it cannot make sense of.
 */
export class MessageFramer {
  #skip = 0;
  #line: Uint8Array[] = [];
  #lineBytes = 0;
  #lost = false;

  /**
   * Follows `chunk`, the next bytes of the stream. Returns the large message that starts in it with
   * its protocol line and does not end in it; the framer then takes that message as consumed whole.
   */
  scan(chunk: Uint8Array): MessageSplit | undefined {
    let i = 0;
    while (i < chunk.length && !this.#lost) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, chunk.length - i);
        this.#skip -= take;
        i += take;
        continue;
      }
      const lineStart = this.#lineBytes === 0 ? i : -1;
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        this.#keepLine(chunk.subarray(i));
        return undefined;
      }
      this.#keepLine(chunk.subarray(i, lf + 1));
      const parts = this.#line;
      const overflow = this.#lineBytes > MAX_LINE_BYTES;
      const bytes = Math.min(this.#lineBytes, MAX_LINE_BYTES);
      this.#line = [];
      this.#lineBytes = 0;
      i = lf + 1;
      const first = parts[0]![0]! | 0x20;
      if (first !== M && first !== H) continue;
      const line = new TextDecoder().decode(joinBytes(parts, bytes)).trimEnd();
      const match = MSG_LINE.exec(line);
      if (!match && !/^H?MSG\s/i.test(line)) continue;
      if (!match || overflow) {
        this.#lost = true;
        return undefined;
      }
      const body = Number(match[1]);
      if (body > MAX_BODY_BYTES) {
        this.#lost = true;
        return undefined;
      }
      const length = i - (lineStart < 0 ? i : lineStart) + body + 2;
      if (lineStart >= 0 && length > LARGE_MESSAGE_BYTES && lineStart + length > chunk.length) {
        return { start: lineStart, length };
      }
      this.#skip = body + 2;
    }
    return undefined;
  }

  /** Keeps the start of the current line (up to {@link MAX_LINE_BYTES}) and counts all of it. */
  #keepLine(part: Uint8Array): void {
    const room = MAX_LINE_BYTES - this.#lineBytes;
    if (room > 0) this.#line.push(part.slice(0, room));
    this.#lineBytes += part.length;
  }
}

const LF = 10;
/** Lower-case `m` and `h`: the first letters of `MSG` and `HMSG` lines. */
const M = 0x6d;
const H = 0x68;

function joinBytes(parts: Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const joined = new Uint8Array(bytes);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/**
 * The chunks to hand nats.js's parser, from `read` (one socket read into the given buffer, `null` at
 * the end). Reads go into a buffer of {@link READ_BUFFER_BYTES}. A chunk that fills at least half of
 * it is handed out as a view (the parser may keep views of message bodies, so the next read takes a
 * fresh buffer); a smaller one is copied out. A large message that a read holds only the start of
 * (see {@link MessageFramer}) is read to its end into a buffer of its own and handed out whole, so
 * the parser hands out a view of it instead of growing and copying one read by read.
 */
export async function* readChunks(
  read: (buffer: Uint8Array) => Promise<number | null>,
  framer: MessageFramer,
  readBytes = READ_BUFFER_BYTES,
): AsyncIterableIterator<Uint8Array> {
  let buffer = new Uint8Array(readBytes);
  for (;;) {
    const n = await read(buffer);
    if (n === null) return;
    const filled = buffer;
    const split = framer.scan(filled.subarray(0, n));
    const end = split?.start ?? n;
    if (end >= filled.length / 2) {
      buffer = new Uint8Array(readBytes);
      yield filled.subarray(0, end);
    } else if (end > 0) {
      yield filled.slice(0, end);
    }
    if (!split) continue;
    const whole = new Uint8Array(split.length);
    whole.set(filled.subarray(split.start, n));
    for (let got = n - split.start; got < whole.length;) {
      const more = await read(whole.subarray(got));
      if (more === null) return;
      got += more;
    }
    yield whole;
  }
}

/**
 * Connects like nats.js's `connect`, on {@link DenoTransport}. It installs nats.js's transport
 * factory, which is process-wide: reconnects of every connection made after this call, including
 * ones made by nats.js's own `connect` before it, use {@link DenoTransport}; a later nats.js
 * `connect` puts its Node transport back for the reconnects that follow.
 */
export function connectNatsDeno(options: ConnectionOptions = {}): Promise<NatsConnection> {
  quietParseErrors();
  setTransportFactory({ factory: () => new DenoTransport(), dnsResolveFn: resolveHost });
  return NatsConnectionImpl.connect(options);
}

/** The IPv4 and IPv6 addresses of `host`, or `host` itself when it has none (or is an address). */
export async function resolveHost(host: string): Promise<string[]> {
  const lookups = await Promise.allSettled([Deno.resolveDns(host, "A"), Deno.resolveDns(host, "AAAA")]);
  const addresses = lookups.flatMap((lookup) => lookup.status === "fulfilled" ? lookup.value : []);
  return addresses.length > 0 ? addresses : [host];
}

/** Mutual TLS negotiated after a plain-text INFO: `Deno.startTls` cannot present a client certificate. */
function needsNodeTls(tls: TlsOptions | null | undefined): boolean {
  const clientCertificate = tls?.certFile !== undefined || tls?.cert !== undefined ||
    tls?.keyFile !== undefined || tls?.key !== undefined;
  return clientCertificate && tls?.handshakeFirst !== true;
}

/** Deno TLS options from nats.js TLS options: the CA, and the client certificate for `connectTls`. */
async function loadTlsFiles(
  tls: TlsOptions,
): Promise<{ caCerts?: string[]; cert?: string; key?: string }> {
  const read = async (file: string | undefined, text: string | undefined, what: string) => {
    if (file === undefined) return text;
    try {
      return await Deno.readTextFile(file);
    } catch (error) {
      throw new NatsError(
        `Cannot read the TLS ${what} file ${file}: ${asError(error).message}; check the path`,
        ErrorCode.Tls,
        asError(error),
      );
    }
  };
  const ca = await read(tls.caFile, tls.ca, "CA");
  const cert = await read(tls.certFile, tls.cert, "certificate");
  const key = await read(tls.keyFile, tls.key, "key");
  return {
    ...(ca !== undefined ? { caCerts: [ca] } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
  };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
