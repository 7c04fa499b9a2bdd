/**
 * The parts of nats.js that are not its public API, in one place. Shoal's own transport
 * (deno_transport.ts) plugs into nats.js's transport factory and parser; these paths and shapes are
 * those of the pinned release, {@link NATS_JS_VERSION}. nats_internals_test.ts checks the installed
 * version, so an upgrade fails there, loudly, and nowhere else.
 *
 * @module
 */
import { type NatsConnection, Parser, type Transport } from "npm:nats@2.29.3/lib/src/nats-base-client.js";

export {
  checkOptions,
  type ConnectionOptions,
  type Deferred,
  deferred,
  ErrorCode,
  extractProtocolMessage,
  INFO,
  type NatsConnection,
  NatsConnectionImpl,
  NatsError,
  type Server,
  type ServerInfo,
  setTransportFactory,
  type TlsOptions,
  type Transport,
} from "npm:nats@2.29.3/lib/src/nats-base-client.js";
export { NodeTransport } from "npm:nats@2.29.3/lib/src/node_transport.js";

/** The nats.js release whose internals this module names (deno.json pins it). */
export const NATS_JS_VERSION = "2.29.3";

/** Bytes of the unparsable input that a parse error quotes. */
const QUOTED_BYTES = 32;

let quiet = false;

/**
 * Makes nats.js's protocol parse errors short. nats.js quotes the whole rest of the read in the
 * error (up to megabytes of message bodies) and logs it when its reader stops; the error then names
 * the parser state, the bytes left and the first {@link QUOTED_BYTES} of them, escaped. Idempotent.
 */
export function quietParseErrors(): void {
  if (quiet) return;
  quiet = true;
  const proto = Parser.prototype as unknown as {
    fail(this: { state: number }, data: Uint8Array, label?: string): Error;
  };
  proto.fail = function (data: Uint8Array, label = "parse error") {
    const head = [...data.subarray(0, QUOTED_BYTES)]
      .map((b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)
      .join("");
    const error = new Error(
      `NATS protocol ${label} in parser state ${this.state} with ${data.length} bytes left, starting "${head}"` +
        "; the connection is dropped and reconnects",
    );
    // One line when logged: the stack would only name the parser.
    error.stack = `${error.name}: ${error.message}`;
    return error;
  };
}

/** The transport a connection runs on now (tests and diagnostics). */
export function transportOf(nc: NatsConnection): Transport {
  return (nc as unknown as { protocol: { transport: Transport } }).protocol.transport;
}

/** The protocol parser of a connection's current socket (tests). */
export function parserOf(nc: NatsConnection): { parse(bytes: Uint8Array): void } {
  return (nc as unknown as { protocol: { parser: { parse(bytes: Uint8Array): void } } }).protocol.parser;
}
