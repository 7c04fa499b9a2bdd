/**
 * The data plane with real processes: a data connection cut mid-transfer while NATS stays up, peers
 * without the job's secret or with an earlier job's, an oversized frame from an authenticated peer,
 * TLS whenever NATS has it, and a worker that can reach only the NATS server (transport auto and
 * direct). Every run that trains ends within float tolerance of a clean in-process run.
 */
import assert from "node:assert/strict";
import { layers } from "../mod.ts";
import type { Model } from "../coordinator/model.ts";
import { createDistributedPool, type DistributedPool } from "../coordinator/distributed/pool.ts";
import type { PoolListener } from "../coordinator/distributed/events.ts";
import { Callback } from "../shared/callbacks/mod.ts";
import { Engine } from "../shared/model/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import {
  DataPlaneAuthError,
  dialDataPlane,
  FrameChannel,
  newJobSecret,
  offerHandshake,
} from "../shared/io/data_plane/mod.ts";
import { encodeMessage } from "../shared/io/nats/codec.ts";
import { twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { makeCertificates } from "./support/certificates.ts";
import { ExternalWorker } from "./support/external_worker.ts";
import { freePort } from "./support/free_port.ts";
import { EventLog } from "./support/pool_events.ts";

const DATA = twoClassProblem(400);
/** 320 training rows in batches of 32: 10 steps per epoch, 20 in all. */
const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };
const TRAIN_ROWS = 320;

/** A model whose weights (12 KB) take more than one socket read, so a cut can fall inside a frame. */
const build = (): Model => twoClassModel([new layers.Dense(256, { activation: "relu" })]);

const clean = (() => {
  let run: Promise<Float32Array> | undefined;
  return () =>
    run ??= (async () => {
      const model = build();
      await model.fit(DATA.x, DATA.y, FIT);
      return model.network.params.slice();
    })();
})();

async function assertLikeClean(model: Model, what: string): Promise<void> {
  const reference = await clean();
  assert.equal(model.lastFit!.samplesProcessed, FIT.epochs * TRAIN_ROWS, `${what}: samples processed`);
  assert.equal(model.lastFit!.steps, 20, `${what}: steps`);
  let diff = 0;
  model.network.params.forEach((v, i) => diff = Math.max(diff, Math.abs(v - reference[i]!)));
  assert.ok(diff <= 1e-5, `${what}: max abs weight difference to the clean run is ${diff}`);
}

/**
 * A TCP proxy to `target` that can cut one connection in the middle of what the coordinator sends:
 * armed with `cutAfter(n)`, it closes the first connection that carries `n` more bytes toward a worker.
 */
class CuttingProxy implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  #armed: { bytes: number; cut: () => void } | undefined;
  cuts = 0;

  constructor(readonly target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    void this.#accept();
  }

  /** Cuts the next connection that carries `bytes` more bytes toward its worker. */
  cutAfter(bytes: number): void {
    this.#armed = { bytes, cut: () => {} };
  }

  async #accept(): Promise<void> {
    for await (const worker of this.#listener) {
      const coordinator = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
      this.#conns.add(worker).add(coordinator);
      const close = () => {
        for (const c of [worker, coordinator]) {
          try {
            c.close();
          } catch {
            // Closed already.
          }
        }
      };
      void this.#pump(worker, coordinator, () => {}).finally(close);
      void this.#pump(coordinator, worker, (n) => {
        const armed = this.#armed;
        if (!armed) return;
        armed.bytes -= n;
        if (armed.bytes > 0) return;
        this.#armed = undefined;
        this.cuts++;
        close();
      }).finally(close);
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, counted: (n: number) => void): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) return;
        counted(n);
        for (let sent = 0; sent < n;) sent += await to.write(buffer.subarray(sent, n));
      }
    } catch {
      // The other side closed.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
    await Promise.resolve();
  }
}

/** Runs `action` at the end of batch `batch` of the first epoch, then `after` at every later batch end. */
class AtBatch extends Callback {
  #seen = 0;
  constructor(
    readonly batch: number,
    readonly action: () => void,
    readonly after: () => Promise<void> = async () => {},
  ) {
    super();
  }
  override async onBatchEnd(): Promise<void> {
    const n = this.#seen++;
    if (n === this.batch) this.action();
    else if (n > this.batch) await this.after();
  }
}

Deno.test("a data connection cut mid-transfer while NATS stays up: the slice is recomputed once, the worker reconnects", async () => {
  await using server = await startNatsServer();
  const dataPort = freePort();
  await using proxy = new CuttingProxy(dataPort);
  const workers = ["c0", "c1"].map((name) => new ExternalWorker(name, server.url));
  try {
    await Promise.all(workers.map((w) => w.waitFor(/connected to/)));
    const log = new EventLog();
    const rejoined = () => log.has("joined", (e) => e.rejoined);
    const model = build();
    // Half-way through the next weights frame (12 KB) of one of the two connections.
    const cut = new AtBatch(3, () => proxy.cutAfter(6000), async () => {
      if (!rejoined()) await new Promise((resolve) => setTimeout(resolve, 150));
    });
    await model.fit(DATA.x, DATA.y, {
      ...FIT,
      callbacks: [cut],
      distribute: {
        nats: server.url,
        workers: 2,
        transport: "direct",
        dataUnix: false,
        dataListen: `127.0.0.1:${dataPort}`,
        dataAdvertise: `127.0.0.1:${proxy.port}`,
        heartbeatSeconds: 0.2,
        listeners: log.listeners,
      },
    });
    assert.equal(proxy.cuts, 1);
    const dropped = log.find("dropped");
    assert.match(dropped.reason, /data connection ended/);
    const back = log.find("joined", (e) => e.rejoined, "rejoin");
    assert.ok(
      back.worker === dropped.worker && back.link === "direct" && back.at > dropped.at,
      log.toString(),
    );
    assert.equal(model.lastFit!.workers, 2);
    await assertLikeClean(model, "cut data connection");
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

/** A one-worker pool on the embedded server, for handshake tests. */
async function smallPool(listeners: PoolListener[] = []): Promise<DistributedPool> {
  const model = build();
  const engine = new Engine(model.network, { loss: "sparse_categorical_crossentropy", metrics: [], seed: 7 });
  return await createDistributedPool(engine, { workers: 1, backend: "auto", quiet: true, listeners });
}

Deno.test("a peer without the job's secret, or with an earlier job's, is refused and the coordinator says so", async () => {
  const first = await smallPool();
  const earlierJob = first.job, earlierSecret = first.dataSecret!;
  await first.close();
  const log = new EventLog();
  const pool = await smallPool(log.listeners);
  try {
    const dial = (job: string, secret: string) =>
      dialDataPlane(pool.dataAddresses, { job, secret, worker: "w0", role: "work", maxBodyBytes: 1024 });
    await assert.rejects(dial(pool.job, newJobSecret()), DataPlaneAuthError);
    await assert.rejects(dial(pool.job, earlierSecret), /did not prove the secret/);
    await assert.rejects(
      dial(earlierJob, earlierSecret),
      new RegExp(`serves job ${pool.job}, not job ${earlierJob}`),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = log.all("data-refused").map((e) => e.reason);
    assert.equal(
      refused.filter((r) => /did not prove the secret of job/.test(r)).length,
      2,
      refused.join("\n"),
    );
    // The pool still computes with its own worker.
    const model = build();
    await pool.setData("d", { inputs: [DATA.x], y: DATA.y, length: 400 });
    const result = await pool.evaluate("d", model.network.params, model.network.state, 100);
    assert.equal(result.count, 400);
  } finally {
    await pool.close();
  }
});

Deno.test("an authenticated peer's oversized frame is refused from its prefix, without the memory", async () => {
  const log = new EventLog();
  const pool = await smallPool(log.listeners);
  try {
    const path = pool.dataAddresses.find((a) => a.startsWith("unix:"))!.slice("unix:".length);
    const conn = await Deno.connect({ transport: "unix", path });
    const channel = new FrameChannel(conn, { maxBodyBytes: 1024, encrypted: false, peer: "test" });
    await offerHandshake(channel, {
      job: pool.job,
      secret: pool.dataSecret!,
      worker: pool.liveWorkers[0]!.name,
      role: "sync",
    });
    const before = Deno.memoryUsage().rss;
    const huge = encodeMessage({ t: "part", version: 1, slice: 0, slices: 2, call: 0 });
    new DataView(huge.buffer).setUint32(8, 3_500_000_000, true);
    await conn.write(huge);
    assert.equal(await channel.next(), null, "the coordinator closed the connection");
    assert.ok(
      Deno.memoryUsage().rss - before < 100 * 1024 * 1024,
      "the coordinator allocated the declared body",
    );
    // A truncated frame: the prefix promises more than ever comes.
    const again = await Deno.connect({ transport: "unix", path });
    const second = new FrameChannel(again, { maxBodyBytes: 1024, encrypted: false, peer: "test" });
    await offerHandshake(second, { job: pool.job, secret: pool.dataSecret!, worker: "w0", role: "sync" });
    const part = encodeMessage({ t: "part", version: 1, slice: 0, slices: 2, call: 0 }, new Float32Array(64));
    await again.write(part.subarray(0, part.length - 10));
    second.close();
    // The pool still computes with its own worker.
    const model = build();
    await pool.setData("d", { inputs: [DATA.x], y: DATA.y, length: 400 });
    assert.equal((await pool.evaluate("d", model.network.params, model.network.state, 100)).count, 400);
    assert.ok(!log.has("dropped"), log.toString());
  } finally {
    await pool.close();
  }
});

Deno.test("TLS is on the data plane whenever NATS has it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-data-tls-" });
  try {
    const certs = await makeCertificates(dir);
    await using server = await startNatsServer({
      extraConfig: `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}" }`,
    });
    const worker = new ExternalWorker("t0", server.url, ["--nats-tls-ca", certs.ca]);
    try {
      await worker.waitFor(/connected to/);
      const distribute = {
        nats: server.url,
        workers: 1,
        auth: { tls: { caFile: certs.ca } },
        dataUnix: false,
        dataListen: "127.0.0.1:0",
        transport: "direct" as const,
      };
      await assert.rejects(
        build().fit(DATA.x, DATA.y, { ...FIT, distribute }),
        /Cannot start the data plane in plain text as the NATS connection uses TLS: pass --data-tls-cert/,
      );
      const log = new EventLog();
      const model = build();
      await model.fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: {
          ...distribute,
          dataTls: { certFile: certs.serverCert, keyFile: certs.serverKey },
          listeners: log.listeners,
        },
      });
      assert.equal(log.find("joined").link, "direct");
      await worker.waitFor(/joined job \w+ \(data plane tls:\/\/127\.0\.0\.1:\d+\)/);
      await assertLikeClean(model, "TLS data plane");
    } finally {
      await worker.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker that reaches only the NATS server trains through it (auto) or is refused by name (direct)", async () => {
  await using server = await startNatsServer();
  const worker = new ExternalWorker("n0", server.url);
  try {
    await worker.waitFor(/connected to/);
    const unreachable = `127.0.0.1:${freePort()}`;
    const distribute = { nats: server.url, workers: 1, dataUnix: false, dataAdvertise: unreachable };
    const log = new EventLog();
    const model = build();
    await model.fit(DATA.x, DATA.y, {
      ...FIT,
      distribute: { ...distribute, transport: "auto", listeners: log.listeners },
    });
    assert.equal(log.find("joined").link, "nats");
    await worker.waitFor(/sending bulk data through NATS instead/);
    await assertLikeClean(model, "auto over NATS");
    await assert.rejects(
      build().fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: { ...distribute, transport: "direct", joinTimeoutSeconds: 20 },
      }),
      new RegExp(
        `cannot use the data plane of job \\w+: Cannot reach the coordinator's data plane at tcp://${unreachable}`,
      ),
    );
  } finally {
    await worker.stop();
  }
});
