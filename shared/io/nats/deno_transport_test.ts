import assert from "node:assert/strict";
import { ErrorCode, NatsError } from "npm:nats@2.29.3";
import {
  connectNatsDeno,
  DenoTransport,
  LARGE_MESSAGE_BYTES,
  MessageFramer,
  READ_BUFFER_BYTES,
  readChunks,
} from "./deno_transport.ts";
import { startNatsServer } from "./server.ts";
import { parserOf, transportOf } from "./nats_internals.ts";
import { makeCertificates } from "../../../tests/support/certificates.ts";
import { publishLarge, Reassembler } from "./chunking.ts";
import { z } from "npm:zod@4.6.7";

const encode = (text: string) => new TextEncoder().encode(text);

function msgFrame(body: number, line = `MSG big 1 ${body}\r\n`): Uint8Array {
  const head = encode(line);
  const frame = new Uint8Array(head.length + body + 2);
  frame.set(head);
  frame.set(encode("\r\n"), head.length + body);
  return frame;
}

Deno.test("MessageFramer finds a large MSG that a chunk holds only the start of", () => {
  const framer = new MessageFramer();
  const prefix = encode("PING\r\nMSG small 2 3\r\nabc\r\n+OK\r\n");
  const big = msgFrame(LARGE_MESSAGE_BYTES * 2);
  const chunk = new Uint8Array(prefix.length + 1000);
  chunk.set(prefix);
  chunk.set(big.subarray(0, 1000), prefix.length);
  assert.deepEqual(framer.scan(chunk), { start: prefix.length, length: big.length });
  // The framer took that message as consumed: the next op is seen at the next chunk's start.
  const next = msgFrame(LARGE_MESSAGE_BYTES * 3, `HMSG h 3 _INBOX.x 12 ${LARGE_MESSAGE_BYTES * 3}\r\n`);
  assert.deepEqual(framer.scan(next.subarray(0, 500)), { start: 0, length: next.length });
});

Deno.test("MessageFramer follows bodies and lines split across chunks and leaves small messages alone", () => {
  const framer = new MessageFramer();
  const small = msgFrame(LARGE_MESSAGE_BYTES / 2);
  assert.equal(framer.scan(small.subarray(0, 100)), undefined);
  assert.equal(framer.scan(small.subarray(100)), undefined);
  // A MSG line split across two chunks: its body is skipped, not mistaken for protocol lines.
  const body = encode("MSG fake 9 99999999\r\n");
  const frame = msgFrame(body.length, `MSG split 4 ${body.length}\r\n`);
  frame.set(body, frame.length - 2 - body.length);
  assert.equal(framer.scan(frame.subarray(0, 5)), undefined);
  assert.equal(framer.scan(frame.subarray(5)), undefined);
  const big = msgFrame(LARGE_MESSAGE_BYTES * 2);
  assert.deepEqual(framer.scan(big.subarray(0, 64)), { start: 0, length: big.length });
});

Deno.test("MessageFramer stops following a MSG line it cannot read, without throwing", () => {
  const framer = new MessageFramer();
  assert.equal(framer.scan(encode("MSG broken line without size x\r\n")), undefined);
  assert.equal(framer.scan(msgFrame(LARGE_MESSAGE_BYTES * 2).subarray(0, 100)), undefined);
});

Deno.test("connectNatsDeno moves large and small messages intact and in order on Deno sockets", async () => {
  await using server = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
  const a = await connectNatsDeno({ servers: server.url });
  const b = await connectNatsDeno({ servers: server.url });
  try {
    assert.ok(transportOf(a) instanceof DenoTransport);
    assert.equal(a.info?.max_payload, 8 * 1024 * 1024);
    const sizes = [3, 5 * 1024 * 1024 + 7, 0, 100_000, 2, 3 * 1024 * 1024];
    const received: Uint8Array[] = [];
    const done = Promise.withResolvers<void>();
    b.subscribe("data", {
      callback: (_err, msg) => {
        received.push(msg.data);
        if (received.length === sizes.length) done.resolve();
      },
    });
    await b.flush();
    const sent = sizes.map((size, k) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + k) & 255));
    for (const payload of sent) a.publish("data", payload);
    await done.promise;
    assert.deepEqual(received.map((r) => r.length), sizes);
    for (let k = 0; k < sizes.length; k++) assert.ok(equalBytes(received[k]!, sent[k]!), `message ${k}`);
    b.subscribe("echo", { callback: (_err, msg) => msg.respond(msg.data) });
    await b.flush();
    const reply = await a.request("echo", sent[1], { timeout: 5000 });
    assert.ok(equalBytes(reply.data, sent[1]!));
  } finally {
    await a.close();
    await b.close();
  }
});

/** A server-to-client MSG frame of `body` bytes whose content depends on `seed`. */
function filledFrame(body: number, seed: number): Uint8Array {
  const frame = msgFrame(body, `MSG d.${seed} ${seed} ${body}\r\n`);
  const start = frame.length - 2 - body;
  for (let i = 0; i < body; i++) frame[start + i] = (i * 7 + seed) & 255;
  return frame;
}

/** Body sizes on both sides of every size the reader and the server treat differently. */
function boundarySizes(maxPayload: number): number[] {
  const line = `MSG d.1 1 ${READ_BUFFER_BYTES}\r\n`.length + 2;
  const edges = [
    LARGE_MESSAGE_BYTES - line,
    LARGE_MESSAGE_BYTES,
    READ_BUFFER_BYTES / 2 - line,
    READ_BUFFER_BYTES / 2,
    READ_BUFFER_BYTES - line,
    READ_BUFFER_BYTES,
    maxPayload,
    2 * READ_BUFFER_BYTES,
  ];
  const sizes = [1, 2, 100, 300_000, 700_000, 999_999, 4 * 1024 * 1024];
  for (const edge of edges) sizes.push(edge - 1, edge, edge + 1);
  return [...new Set(sizes)].filter((n) => n > 0 && n <= 4 * 1024 * 1024).sort((a, b) => a - b);
}

/** A socket read script: `read` copies the next bytes of `stream`, at most `cut(offset)` of them. */
function scriptedReads(stream: Uint8Array, cut: (offset: number) => number) {
  let offset = 0;
  return (buffer: Uint8Array): Promise<number | null> => {
    if (offset >= stream.length) return Promise.resolve(null);
    const n = Math.max(1, Math.min(buffer.length, stream.length - offset, cut(offset)));
    buffer.set(stream.subarray(offset, offset + n));
    offset += n;
    return Promise.resolve(n);
  };
}

Deno.test("readChunks hands the parser every byte in order, with large messages whole, at every read boundary", async () => {
  const frames: Uint8Array[] = [];
  const sizes = boundarySizes(1024 * 1024);
  sizes.forEach((size, k) => {
    frames.push(filledFrame(size, k));
    if (k % 2 === 0) frames.push(encode("PING\r\n"), filledFrame(3, 1000 + k));
  });
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  const starts: number[] = [];
  let o = 0;
  for (const f of frames) {
    starts.push(o);
    stream.set(f, o);
    o += f.length;
  }
  // Reads that return all they can, and reads cut one byte before, at and after every frame start,
  // at the middle of every frame, and at random places.
  let rng = 12345;
  const random = () => (rng = (rng * 1103515245 + 12345) % 2147483648) / 2147483648;
  const cuts: [string, (offset: number) => number][] = [
    ["full reads", () => Infinity],
    ...[-1, 0, 1].map((shift): [string, (offset: number) => number] => [
      `cut at frame starts ${shift >= 0 ? "+" : ""}${shift}`,
      (offset) => {
        const next = starts.find((s) => s + shift > offset);
        return next === undefined ? Infinity : next + shift - offset;
      },
    ]),
    ["cut mid-frame", (offset) => {
      const k = starts.findIndex((s, i) => (starts[i + 1] ?? stream.length) > offset && s <= offset);
      const mid = starts[k]! + Math.floor(frames[k]!.length / 2);
      return mid > offset ? mid - offset : Infinity;
    }],
    ["random cuts", () => 1 + Math.floor(random() * 1.5 * READ_BUFFER_BYTES)],
  ];
  for (const [name, cut] of cuts) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of readChunks(scriptedReads(stream, cut), new MessageFramer())) {
      chunks.push(chunk.slice());
    }
    const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      joined.set(c, at);
      at += c.length;
    }
    assert.equal(joined.length, stream.length, name);
    assert.ok(equalBytes(joined, stream), `${name}: the bytes handed on differ from the bytes read`);
  }
});

/** Publishes every size back to back (small messages between the large), checks each arrives intact. */
async function roundTripSizes(maxPayload: number, configText: string): Promise<void> {
  await using server = await startNatsServer({ configText });
  const a = await connectNatsDeno({ servers: server.url });
  const b = await connectNatsDeno({ servers: server.url });
  try {
    assert.equal(a.info?.max_payload, maxPayload);
    const sizes = boundarySizes(maxPayload);
    const raw = sizes.filter((n) => n <= maxPayload);
    const payload = (size: number, seed: number) =>
      Uint8Array.from({ length: size }, (_, i) => (i * 7 + seed) & 255);
    // Raw messages up to max_payload: back to back, then interleaved with 1-byte messages.
    for (const interleaved of [false, true]) {
      const got: Uint8Array[] = [];
      const expected = raw.flatMap((size, k) =>
        interleaved ? [payload(size, k), payload(1, k)] : [payload(size, k)]
      );
      const done = Promise.withResolvers<void>();
      const sub = b.subscribe(`raw.${interleaved}`, {
        callback: (_err, msg) => {
          got.push(msg.data.slice());
          if (got.length === expected.length) done.resolve();
        },
      });
      await b.flush();
      for (const p of expected) a.publish(`raw.${interleaved}`, p);
      await deadline(done.promise, 30_000, `${got.length} of ${expected.length} raw messages arrived`);
      sub.unsubscribe();
      assert.deepEqual(got.map((g) => g.length), expected.map((e) => e.length));
      got.forEach((g, k) =>
        assert.ok(equalBytes(g, expected[k]!), `raw message ${k} (${g.length} bytes) differs`)
      );
    }
    // Shoal messages of every size, chunked above max_payload, interleaved with small ones.
    const Header = z.object({ k: z.int() });
    const reassembler = new Reassembler();
    const bodies = sizes.map((size, k) => payload(size, k));
    const got = new Map<number, Uint8Array>();
    const done = Promise.withResolvers<void>();
    const sub = b.subscribe("shoal", {
      callback: (_err, msg) => {
        const m = reassembler.push(msg.data, Header);
        if (m) got.set(m.header.k, m.body.slice());
        if (got.size === 2 * bodies.length) done.resolve();
      },
    });
    await b.flush();
    for (const [k, body] of bodies.entries()) {
      await publishLarge(a, "shoal", { k }, body);
      await publishLarge(a, "shoal", { k: -1 - k }, new Uint8Array([k & 255]));
    }
    await deadline(done.promise, 30_000, `${got.size} of ${2 * bodies.length} Shoal messages arrived`);
    sub.unsubscribe();
    for (const [k, body] of bodies.entries()) {
      assert.ok(equalBytes(got.get(k)!, body), `Shoal message ${k} (${body.length} bytes) differs`);
      assert.deepEqual([...got.get(-1 - k)!], [k & 255]);
    }
  } finally {
    await a.close();
    await b.close();
  }
}

Deno.test("messages of 1 byte to 4 MB arrive intact through a stock server (1 MB max_payload)", async () => {
  await roundTripSizes(1024 * 1024, "");
});

Deno.test("messages of 1 byte to 4 MB arrive intact through a server with 16 MB max_payload", async () => {
  await roundTripSizes(16 * 1024 * 1024, "max_payload: 16777216\nmax_pending: 67108864\n");
});

Deno.test("a connection whose parser fails logs one short line and reconnects", async () => {
  await using server = await startNatsServer({ configText: "" });
  const nc = await connectNatsDeno({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  const logged: unknown[][] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void logged.push(args);
  try {
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return true;
      return false;
    })();
    // Corrupt what the parser receives next: garbage followed by 200 KB of 0xff.
    assert.ok(transportOf(nc) instanceof DenoTransport);
    const parser = parserOf(nc);
    const parse = parser.parse.bind(parser);
    parser.parse = (bytes: Uint8Array) => {
      const bad = new Uint8Array(bytes.length + 200_000).fill(0xff);
      bad.set(encode("\x00\x01garbage "), 0);
      parser.parse = parse;
      parse(bad);
    };
    nc.publish("x", new Uint8Array(10));
    nc.subscribe("ping", { callback: (_err, msg) => msg.respond(new Uint8Array([7])) });
    assert.equal(await deadline(reconnected, 10_000, "no reconnect"), true);
    const reply = await nc.request("ping", undefined, { timeout: 2000 });
    assert.deepEqual([...reply.data], [7]);
    const text = logged.map((args) => args.map(String).join(" ")).join("\n");
    assert.equal(logged.length, 1, text);
    assert.ok(text.length < 400, `the log line quotes too much: ${text.length} characters`);
    assert.match(text, /parse error/);
  } finally {
    console.log = log;
    await nc.close();
  }
});

function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("connectNatsDeno reports a refused connection as nats.js does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const error = await connectNatsDeno({ servers: `nats://127.0.0.1:${port}`, timeout: 2000 }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof NatsError, String(error));
  assert.equal(error.code, ErrorCode.ConnectionRefused);
});

Deno.test("a connection on DenoTransport reconnects on DenoTransport after a server restart", async () => {
  await using server = await startNatsServer();
  const nc = await connectNatsDeno({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    nc.subscribe("ping", { callback: (_err, msg) => msg.respond(new Uint8Array([7])) });
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return true;
      return false;
    })();
    const before = transportOf(nc);
    await server.restart();
    assert.equal(await reconnected, true);
    assert.notEqual(transportOf(nc), before);
    assert.ok(transportOf(nc) instanceof DenoTransport);
    const reply = await nc.request("ping", undefined, { timeout: 2000 });
    assert.deepEqual([...reply.data], [7]);
  } finally {
    await nc.close();
  }
});

Deno.test("TLS with a CA runs on Deno sockets; mutual TLS connects too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-deno-transport-" });
  try {
    const certs = await makeCertificates(dir);
    {
      await using server = await startNatsServer({
        extraConfig: `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}" }`,
      });
      const nc = await connectNatsDeno({ servers: server.url, tls: { caFile: `${certs.ca}` } });
      assert.ok(transportOf(nc) instanceof DenoTransport);
      assert.equal(nc.info?.tls_required, true);
      const sub = nc.subscribe("t", { max: 1 });
      nc.publish("t", new Uint8Array(200_000).fill(9));
      for await (const msg of sub) assert.equal(msg.data.length, 200_000);
      await nc.close();
      const untrusted = await connectNatsDeno({ servers: server.url, timeout: 3000 }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.match(String(untrusted?.message), /certificate|UnknownIssuer/i);
    }
    await using mutual = await startNatsServer({
      extraConfig: `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", ` +
        `ca_file: "${certs.ca}", verify: true }`,
    });
    const nc = await connectNatsDeno({
      servers: mutual.url,
      tls: { caFile: `${certs.ca}`, certFile: `${certs.clientCert}`, keyFile: `${certs.clientKey}` },
    });
    assert.ok(nc.isClosed() === false);
    await nc.flush();
    await nc.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
