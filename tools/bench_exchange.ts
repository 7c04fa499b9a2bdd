/**
 * The weights-out, gradient-back exchange of one training step, on the real paths, against raw
 * loopback TCP in the same run.
 *
 * A Shoal round is one `trainStep` of the distributed pool with real worker processes, on a model
 * whose parameter vector has the size of the chapter MLP's (537,601 floats, 2.15 MB) and whose compute
 * is one row through two Dense layers (1 → 179,200 → 1, so a row's label is one value, as in a
 * classifier): the exchange is the step's round minus the longest compute its workers report. It covers sending the weights, the request, the worker reading them, the reply's
 * encoding, transfer and decoding, and the coordinator's checks. Transports: `direct` (the data plane
 * over TCP), `unix` (the data plane over its Unix socket) and `nats` (everything through nats-server).
 *
 * The reference, raw TCP, is a plain read/write-loop echo of the same bytes between two Deno processes
 * (1 client), and the same with two clients at once (the 2-worker reference). `share_of_raw` is raw ms
 * divided by Shoal ms. The echo sends both directions at once; a step cannot (its gradient needs all of
 * its weights), so a ping-pong of the same bytes (each way read whole before the other starts) is
 * printed beside it: the floor of any exchange over these sockets.
 *
 * Run: `deno run -A tools/bench_exchange.ts [--rounds 40]`. The last line printed is the JSON result.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { layers, Sequential } from "../mod.ts";
import { Engine, initBackend } from "../shared/model/mod.ts";
import { DistributedPool, type DistributedPoolOptions } from "../coordinator/distributed/pool.ts";
import { toDataset } from "../coordinator/data.ts";
import { tuneAllocator } from "../shared/io/nats/mod.ts";
import { median } from "../shared/stats.ts";

/** Units of the wide layer: 3 × 179,200 + 1 parameters, the chapter MLP's count without its biases and BatchNorm. */
const WIDE_UNITS = 179_200;

const self = new URL(import.meta.url).pathname;

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

/**
 * Echo server mode: every byte back, one loop per client, as it arrives; or, with `whole` bytes, each
 * message of that size read whole before it goes back (a ping-pong). Prints its port.
 */
async function echoServer(whole?: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  for await (const conn of listener) {
    conn.setNoDelay(true);
    void (async () => {
      if (whole) {
        const message = new Uint8Array(whole);
        for (;;) {
          await readFull(conn, message);
          await writeAll(conn, message);
        }
      }
      const buffer = new Uint8Array(1 << 20);
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        await writeAll(conn, buffer.subarray(0, n));
      }
    })().catch(() => {});
  }
}

/**
 * Median ms for `clients` concurrent clients each to send `bytes` and read them back: echoed as they
 * arrive (both directions at once), or with `pingPong` read whole before they go back (one direction,
 * then the other, as a step's weights and gradient go).
 */
async function rawTcpRounds(
  bytes: number,
  clients: number,
  rounds: number,
  pingPong = false,
): Promise<number> {
  const args = ["run", "-A", self, "echo", ...(pingPong ? [String(bytes)] : [])];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  reader.releaseLock();
  const port = Number(text.trim());
  const conns = await Promise.all(
    Array.from({ length: clients }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  for (const c of conns) c.setNoDelay(true);
  const payload = new Uint8Array(bytes).fill(7);
  const buffers = conns.map(() => new Uint8Array(bytes));
  const times: number[] = [];
  for (let i = 0; i < rounds + 5; i++) {
    const t0 = performance.now();
    await Promise.all(conns.map((c, k) => Promise.all([writeAll(c, payload), readFull(c, buffers[k]!)])));
    if (i >= 5) times.push(performance.now() - t0);
  }
  for (const c of conns) c.close();
  child.kill("SIGTERM");
  await child.status;
  return median(times);
}

/** One measured configuration. */
export interface ExchangeRound {
  transport: "direct" | "unix" | "nats";
  workers: number;
  gradients: "f32" | "bf16";
  /** Median step round minus the longest worker compute, ms. */
  ms: number;
  /** Worker compute (median), ms, for context. */
  compute_ms: number;
}

/** Median exchange ms of the pool's steps for one configuration. */
async function shoalRounds(
  engine: Engine,
  transport: ExchangeRound["transport"],
  workers: number,
  gradients: ExchangeRound["gradients"],
  rounds: number,
): Promise<ExchangeRound> {
  const network = engine.network;
  const options: DistributedPoolOptions = {
    workers,
    backend: "auto",
    quiet: true,
    gradEncoding: gradients,
    transport: transport === "nats" ? "nats" : "direct",
    dataUnix: transport === "unix",
  };
  const pool = await DistributedPool.create(engine, options);
  try {
    const n = 4;
    await pool.setData(
      "x",
      toDataset({ data: new Float32Array(n).fill(1), shape: [n, 1] }, {
        data: new Float32Array(n),
        shape: [n, 1],
      }),
    );
    for (let step = 0; step < rounds + 5; step++) {
      const indices = Int32Array.from({ length: workers }, (_, i) => i);
      await pool.trainStep("x", { step, indices, params: network.params, state: network.state });
    }
    const t = pool.timings();
    return { transport, workers, gradients, ms: t.transfer_ms, compute_ms: t.compute_ms };
  } finally {
    await pool.close();
  }
}

/** Runs every configuration; prints a table and, last, the JSON result. */
export async function benchExchange(rounds: number): Promise<Record<string, unknown>> {
  tuneAllocator();
  await initBackend("auto");
  const model = new Sequential(
    [new layers.Dense(WIDE_UNITS, { inputShape: [1] }), new layers.Dense(1)],
    { seed: 1 },
  );
  const engine = new Engine(model.network, { loss: "mean_squared_error", metrics: [], seed: 1 });
  const bytes = engine.network.params.length * 4;
  const raw1 = await rawTcpRounds(bytes, 1, rounds);
  const raw2 = await rawTcpRounds(bytes, 2, rounds);
  const pingPong = await rawTcpRounds(bytes, 1, rounds, true);
  const results: (ExchangeRound & { share_of_raw: number })[] = [];
  for (const transport of ["direct", "unix", "nats"] as const) {
    for (const workers of [1, 2]) {
      for (const gradients of ["f32", "bf16"] as const) {
        const r = await shoalRounds(engine, transport, workers, gradients, rounds);
        const raw = workers === 1 ? raw1 : raw2;
        results.push({ ...r, share_of_raw: Math.round((raw / r.ms) * 100) / 100 });
      }
    }
  }
  const round2 = (x: number) => Math.round(x * 100) / 100;
  console.log(
    `Exchange of ${bytes} bytes each way (raw loopback TCP echo: ${round2(raw1)} ms with 1 client, ` +
      `${round2(raw2)} ms with 2 at once; a ping-pong, each way whole before the other: ${
        round2(pingPong)
      } ms):`,
  );
  console.table(results.map((r) => ({ ...r, ms: round2(r.ms), compute_ms: round2(r.compute_ms) })));
  return {
    raw_tcp_ms: round2(raw1),
    raw_tcp_2_clients_ms: round2(raw2),
    raw_tcp_pingpong_ms: round2(pingPong),
    rounds: results.map((r) => ({
      transport: r.transport,
      workers: r.workers,
      gradients: r.gradients,
      ms: round2(r.ms),
      share_of_raw: r.share_of_raw,
    })),
  };
}

if (import.meta.main) {
  if (Deno.args[0] === "echo") {
    await echoServer(Deno.args[1] ? Number(Deno.args[1]) : undefined);
  } else {
    const { values } = parseArgs({ args: Deno.args, options: { rounds: { type: "string", default: "40" } } });
    console.log(JSON.stringify(await benchExchange(Number(values.rounds))));
    Deno.exit(0);
  }
}
