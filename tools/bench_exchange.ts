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
 * (1 client), and the same with two clients at once (the 2-worker reference). These VMs are noisy, so
 * each configuration runs in alternating pairs (SHOAL_BENCH_PAIRS, default 3): the echo, kept open in
 * its own process, then Shoal's rounds on one pool. A pair's share is its raw ms divided by its Shoal
 * ms; `share_of_raw` is the median of the pairs' shares, and every pair's is printed. The echo sends
 * both directions at once; a step cannot (its gradient needs all of its weights), so a ping-pong of
 * the same bytes (each way read whole before the other starts) is printed beside it: the floor of any
 * exchange over these sockets.
 *
 * Run: `deno run -A tools/bench_exchange.ts [--rounds 40] [--pairs 3]`. The last line printed is the
 * JSON result.
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
 * Raw loopback TCP with `clients` concurrent clients, each sending `bytes` and reading them back:
 * echoed as they arrive (both directions at once), or with `pingPong` read whole before they go back
 * (one direction, then the other, as a step's weights and gradient go). The server process and the
 * connections stay open, so measurements can alternate with Shoal's.
 */
class RawTcp {
  private constructor(
    readonly child: Deno.ChildProcess,
    readonly conns: Deno.Conn[],
    readonly payload: Uint8Array,
    readonly buffers: Uint8Array[],
  ) {}

  static async open(bytes: number, clients: number, pingPong = false): Promise<RawTcp> {
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
    const raw = new RawTcp(
      child,
      conns,
      new Uint8Array(bytes).fill(7),
      conns.map(() => new Uint8Array(bytes)),
    );
    await raw.rounds(5);
    return raw;
  }

  /** Median ms of `rounds` rounds. */
  async rounds(rounds: number): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await Promise.all(
        this.conns.map((c, k) => Promise.all([writeAll(c, this.payload), readFull(c, this.buffers[k]!)])),
      );
      times.push(performance.now() - t0);
    }
    return median(times);
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.close();
    this.child.kill("SIGTERM");
    await this.child.status;
  }
}

/** One measured configuration. */
export interface ExchangeRound {
  transport: "direct" | "unix" | "nats";
  workers: number;
  gradients: "f32" | "bf16";
  /** Median over the pairs of the median step round minus the longest worker compute, ms. */
  ms: number;
  /** Worker compute (median), ms, for context. */
  compute_ms: number;
  /** The raw echo (as many clients as workers) measured just before each pair's Shoal rounds, ms. */
  raw_ms: number[];
  /** Each pair's raw ms ÷ Shoal ms. */
  shares: number[];
}

/** The raw references kept open through the run: echoes with 1 and 2 clients, and the ping-pong. */
interface References {
  echo: Map<number, RawTcp>;
  pingPong: RawTcp;
  /** Every measurement of each, ms, for the summary. */
  seen: { echo: Map<number, number[]>; pingPong: number[] };
}

/**
 * One configuration in `pairs` alternating pairs on one pool: the raw references, then `rounds`
 * steps of Shoal, so a slow moment of the machine falls on both sides of a pair.
 */
async function shoalRounds(
  engine: Engine,
  refs: References,
  config: Pick<ExchangeRound, "transport" | "workers" | "gradients">,
  rounds: number,
  pairs: number,
): Promise<ExchangeRound> {
  const { transport, workers, gradients } = config;
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
    const indices = Int32Array.from({ length: workers }, (_, i) => i);
    let step = 0;
    const steps = async (count: number) => {
      for (const end = step + count; step < end; step++) {
        await pool.trainStep("x", { step, indices, params: network.params, state: network.state });
      }
    };
    await steps(5);
    const ms: number[] = [], compute: number[] = [], raw: number[] = [];
    for (let p = 0; p < pairs; p++) {
      raw.push(await refs.echo.get(workers)!.rounds(rounds));
      refs.seen.echo.get(workers)!.push(raw.at(-1)!);
      refs.seen.pingPong.push(await refs.pingPong.rounds(rounds));
      const from = step;
      await steps(rounds);
      const t = pool.timings(from);
      ms.push(t.transfer_ms);
      compute.push(t.compute_ms);
    }
    return {
      ...config,
      ms: median(ms),
      compute_ms: median(compute),
      raw_ms: raw,
      shares: ms.map((m, p) => round2(raw[p]! / m)),
    };
  } finally {
    await pool.close();
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Runs every configuration; prints a table and, last, the JSON result. */
export async function benchExchange(rounds: number, pairs: number): Promise<Record<string, unknown>> {
  tuneAllocator();
  await initBackend("auto");
  const model = new Sequential(
    [new layers.Dense(WIDE_UNITS, { inputShape: [1] }), new layers.Dense(1)],
    { seed: 1 },
  );
  const engine = new Engine(model.network, { loss: "mean_squared_error", metrics: [], seed: 1 });
  const bytes = engine.network.params.length * 4;
  const refs: References = {
    echo: new Map([[1, await RawTcp.open(bytes, 1)], [2, await RawTcp.open(bytes, 2)]]),
    pingPong: await RawTcp.open(bytes, 1, true),
    seen: { echo: new Map([[1, []], [2, []]]), pingPong: [] },
  };
  const results: (ExchangeRound & { share_of_raw: number })[] = [];
  try {
    for (const transport of ["direct", "unix", "nats"] as const) {
      for (const workers of [1, 2]) {
        for (const gradients of ["f32", "bf16"] as const) {
          const r = await shoalRounds(engine, refs, { transport, workers, gradients }, rounds, pairs);
          results.push({ ...r, share_of_raw: round2(median(r.shares)) });
        }
      }
    }
  } finally {
    for (const ref of [...refs.echo.values(), refs.pingPong]) await ref.close();
  }
  const raw1 = median(refs.seen.echo.get(1)!), raw2 = median(refs.seen.echo.get(2)!);
  const pingPong = median(refs.seen.pingPong);
  console.log(
    `Exchange of ${bytes} bytes each way, ${pairs} alternating pairs per row (raw loopback TCP echo, medians: ` +
      `${round2(raw1)} ms with 1 client, ${round2(raw2)} ms with 2 at once; a ping-pong, each way whole ` +
      `before the other: ${round2(pingPong)} ms):`,
  );
  console.table(results.map((r) => ({
    transport: r.transport,
    workers: r.workers,
    gradients: r.gradients,
    ms: round2(r.ms),
    compute_ms: round2(r.compute_ms),
    raw_ms_per_pair: r.raw_ms.map(round2).join(" / "),
    share_per_pair: r.shares.join(" / "),
    share_of_raw: r.share_of_raw,
  })));
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
      share_per_pair: r.shares,
    })),
  };
}

if (import.meta.main) {
  if (Deno.args[0] === "echo") {
    await echoServer(Deno.args[1] ? Number(Deno.args[1]) : undefined);
  } else {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        rounds: { type: "string", default: "40" },
        pairs: { type: "string", default: Deno.env.get("SHOAL_BENCH_PAIRS") ?? "3" },
      },
    });
    console.log(JSON.stringify(await benchExchange(Number(values.rounds), Number(values.pairs))));
    Deno.exit(0);
  }
}
