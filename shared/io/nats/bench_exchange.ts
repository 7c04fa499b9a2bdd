/**
 * Measures one training-step exchange over a private nats-server: the coordinator publishes a
 * float32 weights body (fan-out), each of N worker processes answers with a gradient of the same
 * length (request with an empty ack), the round ends when all gradients are decoded.
 *
 * The baseline, "raw loopback TCP", is a plain read/write-loop echo of the same bytes between two
 * Deno processes on `Deno.connect`/`Deno.listen` (1 MiB reads, no framing): it moves the same bytes
 * per round as a one-worker exchange (weights out, gradient back), so the ratio printed for each
 * exchange is (exchange bytes per second) / (raw TCP bytes per second) = echo ms / round ms. For
 * context it also measures the same bytes through a Deno relay process (the four socket hops of a
 * round through a broker, with no broker work), through nats-server with a minimal hand-written NATS
 * client (the floor any NATS client can reach on this server), and a bare nats.js round (raw bytes
 * both ways, no Shoal codec, no ack). Each nats.js round runs on nats.js's Node transport (`node:net`
 * through Deno's compatibility layer) and on {@link connectNatsDeno} (Deno's own sockets).
 *
 * Run: `deno run -A shared/io/nats/bench_exchange.ts [--floats 537600] [--rounds 40] [--transport both]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect as connectNode, type ConnectionOptions, type NatsConnection } from "npm:nats@2.29.3";
import { z } from "npm:zod@4.6.7";
import { asFloat32, decodeMessage, encodeMessage } from "./codec.ts";
import { decodeF32, encodeF32, type FloatEncoding, FloatEncodingSchema } from "./float_encoding.ts";
import { publishLarge } from "./chunking.ts";
import { serve, serveMessages } from "./safe_subscribe.ts";
import { startNatsServer } from "./server.ts";
import { connectNatsDeno } from "./deno_transport.ts";
import { tuneAllocator } from "./allocator.ts";

/** Every process of the bench tunes its allocator as Shoal's processes do (SHOAL_ALLOCATOR=default: not). */
const allocator = tuneAllocator();

const WeightsHeader = z.object({ round: z.int(), encoding: FloatEncodingSchema });
const GradHeader = z.object({ round: z.int(), worker: z.int(), encoding: FloatEncodingSchema });
const self = new URL(import.meta.url).pathname;
const TRANSPORTS = ["node", "deno"] as const;
type TransportName = typeof TRANSPORTS[number];

function connectOn(transport: string, options: ConnectionOptions): Promise<NatsConnection> {
  if (transport === "node") return connectNode(options);
  if (transport === "deno") return connectNatsDeno(options);
  throw new TypeError(`Cannot connect on transport "${transport}": use node or deno`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Worker mode: answer every weights message with a gradient of the same length. */
async function worker(url: string, id: number, prefix: string, transport: string): Promise<void> {
  const nc = await connectOn(transport, { servers: url });
  serveMessages(nc, `${prefix}.weights`, WeightsHeader, async ({ header, body }) => {
    const weights = asFloat32(body);
    const gradient = encodeF32(weights, header.encoding);
    const reply = { round: header.round, worker: id, encoding: header.encoding };
    await nc.request(`${prefix}.grad`, encodeMessage(reply, gradient), { timeout: 10_000 });
  });
  await nc.flush();
  console.log("ready");
  await nc.closed();
}

async function spawnReady(args: string[]): Promise<{ child: Deno.ChildProcess; line: string }> {
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Child ${args.join(" ")} exited before it was ready`);
    text += value;
  }
  reader.releaseLock();
  return { child, line: text.trim() };
}

async function natsRounds(
  transport: TransportName,
  workers: number,
  floats: number,
  encoding: FloatEncoding,
  rounds: number,
  maxPayload: number,
): Promise<number> {
  await using server = await startNatsServer({ maxPayload });
  const prefix = `bench${workers}${encoding}`;
  const children = await Promise.all(
    [...Array(workers).keys()].map((id) =>
      spawnReady(["run", "-A", self, "worker", server.url, String(id), prefix, transport])
    ),
  );
  const nc = await connectOn(transport, { servers: server.url });
  const weights = new Float32Array(floats).map((_, i) => Math.sin(i));
  const gradients = [...Array(workers)].map(() => new Float32Array(floats));
  let pending = 0;
  let roundDone = Promise.withResolvers<void>();
  await using _grads = serve(nc, `${prefix}.grad`, (msg) => {
    const { header, body } = decodeMessage(msg.data, GradHeader);
    decodeF32(body, header.encoding, gradients[header.worker]);
    msg.respond();
    if (--pending === 0) roundDone.resolve();
  });
  const times: number[] = [];
  for (let round = 0; round < rounds + 5; round++) {
    const started = performance.now();
    pending = workers;
    roundDone = Promise.withResolvers<void>();
    await publishLarge(nc, `${prefix}.weights`, { round, encoding: "f32" }, weights);
    await roundDone.promise;
    if (round >= 5) times.push(performance.now() - started);
  }
  await nc.close();
  for (const { child } of children) {
    child.kill("SIGTERM");
    await child.status;
  }
  return median(times);
}

/** Bare worker mode: answer every message on `<prefix>.w` with `bytes` raw bytes on `<prefix>.g`. */
async function bareWorker(url: string, bytes: number, prefix: string, transport: string): Promise<void> {
  const nc = await connectOn(transport, { servers: url });
  const gradient = new Uint8Array(bytes).fill(3);
  serve(nc, `${prefix}.w`, () => nc.publish(`${prefix}.g`, gradient));
  await nc.flush();
  console.log("ready");
  await nc.closed();
}

/** Median round of raw bytes both ways through nats.js and the server, without the Shoal codec. */
async function bareNatsRounds(
  transport: TransportName,
  bytes: number,
  rounds: number,
  maxPayload: number,
): Promise<number> {
  await using server = await startNatsServer({ maxPayload });
  const prefix = "bare";
  const { child } = await spawnReady([
    "run",
    "-A",
    self,
    "bare",
    server.url,
    String(bytes),
    prefix,
    transport,
  ]);
  const nc = await connectOn(transport, { servers: server.url });
  const replies = nc.subscribe(`${prefix}.g`);
  await nc.flush();
  const next = replies[Symbol.asyncIterator]();
  const weights = new Uint8Array(bytes).fill(1);
  const times: number[] = [];
  for (let round = 0; round < rounds + 5; round++) {
    const started = performance.now();
    nc.publish(`${prefix}.w`, weights);
    await next.next();
    if (round >= 5) times.push(performance.now() - started);
  }
  await nc.close();
  child.kill("SIGTERM");
  await child.status;
  return median(times);
}

/** Copies every byte read from `from` to `to` with a plain read/write loop. */
async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1 << 20);
  for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
    for (let sent = 0; sent < n;) sent += await to.write(buffer.subarray(sent, n));
  }
}

/** Echo server mode: echo every byte back. Relay mode: pump bytes between the first two clients. */
async function echoOrRelay(relay: boolean): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  if (relay) {
    const accepted = listener[Symbol.asyncIterator]();
    const a = (await accepted.next()).value as Deno.Conn;
    const b = (await accepted.next()).value as Deno.Conn;
    await Promise.all([pump(a, b), pump(b, a)]).catch(() => {});
    return;
  }
  for await (const conn of listener) void pump(conn, conn).catch(() => {});
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
}

async function readFull(conn: Deno.Conn, buffer: Uint8Array): Promise<void> {
  for (let got = 0; got < buffer.length;) {
    const n = await conn.read(buffer.subarray(got));
    if (n === null) throw new Error("the peer closed the connection");
    got += n;
  }
}

/** Median of `rounds` timed calls of `round` after 5 untimed ones. */
async function timeRounds(rounds: number, round: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds + 5; i++) {
    const started = performance.now();
    await round();
    if (i >= 5) times.push(performance.now() - started);
  }
  return median(times);
}

/** Raw TCP: `bytes` out and back, echoed by another process or, with `relay`, echoed by a second
 * client of this process through a relay process. */
async function tcpRounds(bytes: number, rounds: number, relay: boolean): Promise<number> {
  const { child, line } = await spawnReady(["run", "-A", self, relay ? "relay" : "echo"]);
  const port = Number(line);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const far = relay ? await Deno.connect({ hostname: "127.0.0.1", port }) : undefined;
  for (const c of [conn, far]) c?.setNoDelay(true);
  const echoing = far
    ? (async () => {
      const buffer = new Uint8Array(bytes);
      for (;;) {
        await readFull(far, buffer);
        await writeAll(far, buffer);
      }
    })().catch(() => {})
    : undefined;
  const payload = new Uint8Array(bytes).fill(7);
  const buffer = new Uint8Array(bytes);
  const ms = await timeRounds(rounds, async () => {
    await Promise.all([writeAll(conn, payload), readFull(conn, buffer)]);
  });
  conn.close();
  far?.close();
  await echoing;
  child.kill("SIGTERM");
  await child.status;
  return ms;
}

/** A hand-written NATS client: CONNECT, SUB `subject` 1, PING, wait for PONG. */
async function rawNatsClient(url: string, subject: string): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(url.replace(/^nats:/, "http:"));
  const conn = await Deno.connect({ hostname, port: Number(port) });
  conn.setNoDelay(true);
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  const encoder = new TextEncoder();
  await writeAll(
    conn,
    encoder.encode(`CONNECT {"verbose":false,"protocol":1}\r\nSUB ${subject} 1\r\nPING\r\n`),
  );
  while (!text.includes("PONG")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`nats-server at ${url} closed the connection: ${text}`);
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return conn;
}

function pubFrame(subject: string, body: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`PUB ${subject} ${body.length}\r\n`);
  const frame = new Uint8Array(head.length + body.length + 2);
  frame.set(head);
  frame.set(body, head.length);
  frame.set([13, 10], head.length + body.length);
  return frame;
}

/** Reads one MSG whose body has `size` bytes (its protocol line is shorter than 1 KiB). */
async function readRawMsg(conn: Deno.Conn, buffer: Uint8Array, size: number): Promise<void> {
  let got = 0;
  let need = Infinity;
  while (got < need) {
    const n = await conn.read(buffer.subarray(got));
    if (n === null) throw new Error("nats-server closed the connection");
    got += n;
    const lf = need === Infinity ? buffer.subarray(0, got).indexOf(10) : -1;
    if (lf >= 0) need = lf + 1 + size + 2;
  }
}

/** `bytes` to a second raw client and back through nats-server: the floor of any NATS client. */
async function rawNatsRounds(bytes: number, rounds: number, maxPayload: number): Promise<number> {
  await using server = await startNatsServer({ maxPayload });
  const near = await rawNatsClient(server.url, "raw.g");
  const far = await rawNatsClient(server.url, "raw.w");
  const weights = pubFrame("raw.w", new Uint8Array(bytes).fill(1));
  const gradient = pubFrame("raw.g", new Uint8Array(bytes).fill(2));
  const echoing = (async () => {
    const buffer = new Uint8Array(bytes + 1024);
    for (;;) {
      await readRawMsg(far, buffer, bytes);
      await writeAll(far, gradient);
    }
  })().catch(() => {});
  const buffer = new Uint8Array(bytes + 1024);
  const ms = await timeRounds(rounds, async () => {
    await Promise.all([writeAll(near, weights), readRawMsg(near, buffer, bytes)]);
  });
  near.close();
  far.close();
  await echoing;
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      floats: { type: "string", default: "537600" },
      rounds: { type: "string", default: "40" },
      transport: { type: "string", default: "both" },
    },
  });
  const floats = Number(values.floats);
  const rounds = Number(values.rounds);
  const transports = values.transport === "both" ? TRANSPORTS : [values.transport as TransportName];
  for (const t of transports) {
    if (!TRANSPORTS.includes(t)) {
      throw new TypeError(`Cannot run on transport "${t}": use --transport node, deno or both`);
    }
  }
  const bytes = floats * 4;
  const mb = (bytes / 1e6).toFixed(2);
  const maxPayload = 64 * 1024 * 1024;
  console.log(`${mb} MB each way per round; allocator ${allocator}; ${rounds} rounds, medians`);
  const tcp = await tcpRounds(bytes, rounds, false);
  const rate = (ms: number) => `${(2 * bytes / ms / 1e3).toFixed(0)} MB/s`;
  const ratio = (ms: number) => `${(100 * tcp / ms).toFixed(0)} % of raw TCP`;
  const report = (label: string, ms: number) =>
    console.log(
      `${label.padEnd(58)} ${ms.toFixed(2).padStart(7)} ms  ${rate(ms).padStart(10)}  ${ratio(ms)}`,
    );
  report("raw loopback TCP: read/write-loop echo, Deno to Deno", tcp);
  report("raw TCP through a Deno relay process (4 hops, no broker)", await tcpRounds(bytes, rounds, true));
  report(
    "hand-written NATS client through nats-server (floor)",
    await rawNatsRounds(bytes, rounds, maxPayload),
  );
  for (const transport of transports) {
    report(
      `bare nats.js round, ${transport} transport`,
      await bareNatsRounds(transport, bytes, rounds, maxPayload),
    );
    for (const workers of [1, 2]) {
      for (const encoding of ["f32", "bf16"] as const) {
        const ms = await natsRounds(transport, workers, floats, encoding, rounds, maxPayload);
        report(`Shoal round, ${transport} transport, ${workers} worker(s), ${encoding} gradients`, ms);
      }
    }
  }
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode === "worker") await worker(rest[0]!, Number(rest[1]), rest[2]!, rest[3]!);
  else if (mode === "bare") await bareWorker(rest[0]!, Number(rest[1]), rest[2]!, rest[3]!);
  else if (mode === "echo" || mode === "relay") await echoOrRelay(mode === "relay");
  else await main();
}
