/**
 * Measures one training-step exchange over a private nats-server: the coordinator publishes a
 * float32 weights body (fan-out), each of N worker processes answers with a gradient of the same
 * length (request with an empty ack), the round ends when all gradients are decoded. Compared with
 * a raw loopback TCP echo of the same bytes between two Deno processes (echoed through
 * `ReadableStream.pipeTo`, and with a plain read/write loop), and with a bare nats.js round (one
 * worker, raw bytes both ways, no Shoal codec, no ack): Shoal round / bare round is what the
 * protocol itself costs.
 *
 * Run: `deno run -A shared/io/nats/bench_exchange.ts [--floats 537600] [--rounds 40]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect } from "nats";
import { z } from "zod";
import { asFloat32, decodeMessage, encodeMessage } from "./codec.ts";
import { decodeF32, encodeF32, type FloatEncoding, FloatEncodingSchema } from "./float_encoding.ts";
import { publishLarge } from "./chunking.ts";
import { serve, serveMessages } from "./safe_subscribe.ts";
import { startNatsServer } from "./server.ts";

const WeightsHeader = z.object({ round: z.int(), encoding: FloatEncodingSchema });
const GradHeader = z.object({ round: z.int(), worker: z.int(), encoding: FloatEncodingSchema });
const self = new URL(import.meta.url).pathname;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Worker mode: answer every weights message with a gradient of the same length. */
async function worker(url: string, id: number, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
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
      spawnReady(["run", "-A", self, "worker", server.url, String(id), prefix])
    ),
  );
  const nc = await connect({ servers: server.url });
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
async function bareWorker(url: string, bytes: number, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
  const gradient = new Uint8Array(bytes).fill(3);
  serve(nc, `${prefix}.w`, () => nc.publish(`${prefix}.g`, gradient));
  await nc.flush();
  console.log("ready");
  await nc.closed();
}

/** Median round of raw bytes both ways through nats.js and the server, without the Shoal codec. */
async function bareNatsRounds(bytes: number, rounds: number, maxPayload: number): Promise<number> {
  await using server = await startNatsServer({ maxPayload });
  const prefix = "bare";
  const { child } = await spawnReady(["run", "-A", self, "bare", server.url, String(bytes), prefix]);
  const nc = await connect({ servers: server.url });
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

/** Echo server mode: echo every byte back, through `pipeTo` or with a read/write loop. */
async function echoServer(loop: boolean): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  for await (const conn of listener) {
    if (!loop) {
      void conn.readable.pipeTo(conn.writable).catch(() => {});
      continue;
    }
    void (async () => {
      const buffer = new Uint8Array(1 << 20);
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        for (let sent = 0; sent < n;) sent += await conn.write(buffer.subarray(sent, n));
      }
    })().catch(() => {});
  }
}

async function tcpEcho(bytes: number, rounds: number, loop: boolean): Promise<number> {
  const { child, line } = await spawnReady(["run", "-A", self, loop ? "echo-loop" : "echo"]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(line) });
  const payload = new Uint8Array(bytes).fill(7);
  const buffer = new Uint8Array(bytes);
  const times: number[] = [];
  for (let round = 0; round < rounds + 5; round++) {
    const started = performance.now();
    const writing = (async () => {
      for (let sent = 0; sent < bytes;) sent += await conn.write(payload.subarray(sent));
    })();
    for (let got = 0; got < bytes;) {
      const n = await conn.read(buffer.subarray(got));
      if (n === null) throw new Error("echo server closed the connection");
      got += n;
    }
    await writing;
    if (round >= 5) times.push(performance.now() - started);
  }
  conn.close();
  child.kill("SIGTERM");
  await child.status;
  return median(times);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { floats: { type: "string", default: "537600" }, rounds: { type: "string", default: "40" } },
  });
  const floats = Number(values.floats);
  const rounds = Number(values.rounds);
  const mb = (floats * 4 / 1e6).toFixed(2);
  const tcp = await tcpEcho(floats * 4, rounds, false);
  console.log(`raw TCP echo of ${mb} MB between two Deno processes: ${tcp.toFixed(2)} ms median`);
  const tcpLoop = await tcpEcho(floats * 4, rounds, true);
  console.log(`raw TCP echo of ${mb} MB, read/write loop instead of pipeTo: ${tcpLoop.toFixed(2)} ms median`);
  const bare = await bareNatsRounds(floats * 4, rounds, 64 * 1024 * 1024);
  console.log(`bare nats.js round, 1 worker, ${mb} MB raw bytes both ways: ${bare.toFixed(2)} ms median`);
  for (const workers of [1, 2]) {
    for (const encoding of ["f32", "bf16"] as const) {
      const ms = await natsRounds(workers, floats, encoding, rounds, 64 * 1024 * 1024);
      const ratio = workers === 1 && encoding === "f32"
        ? ` (${(100 * tcp / ms).toFixed(0)} % of raw TCP, ${(100 * bare / ms).toFixed(0)} % of bare nats.js)`
        : "";
      console.log(
        `NATS round, ${workers} worker(s), ${mb} MB weights + ${encoding} gradients: ${
          ms.toFixed(2)
        } ms${ratio}`,
      );
    }
  }
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode === "worker") await worker(rest[0]!, Number(rest[1]), rest[2]!);
  else if (mode === "bare") await bareWorker(rest[0]!, Number(rest[1]), rest[2]!);
  else if (mode === "echo" || mode === "echo-loop") await echoServer(mode === "echo-loop");
  else await main();
}
