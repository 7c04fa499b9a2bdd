/**
 * Data-parallel training over a real nats-server with real worker processes: N workers end where the
 * in-process run ends, faulty replies are rejected and recomputed, a lost worker is survived, and no
 * process outlives `fit`.
 */
import assert from "node:assert/strict";
import { layers } from "../mod.ts";
import type { Model } from "../coordinator/model.ts";
import { createDistributedPool, DistributedPool } from "../coordinator/distributed/pool.ts";
import { LocalPool } from "../coordinator/local_pool.ts";
import { toDataset } from "../coordinator/data.ts";
import { Engine, resolveMetric } from "../shared/model/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { FAULTY_WORKER } from "./support/faulty_worker.ts";
import { EventLog } from "./support/pool_events.ts";
import { ExternalWorker } from "./support/external_worker.ts";
import { freePort } from "./support/free_port.ts";
import { maxAbsDiff } from "./support/compare.ts";

type Kind = "dense" | "dropout" | "batchnorm";

function build(kind: Kind): Model {
  const body = kind === "dropout"
    ? [new layers.Dropout(0.3)]
    : kind === "batchnorm"
    ? [new layers.BatchNormalization(), new layers.Dropout(0.3)]
    : [];
  return twoClassModel(body);
}

/** 320 rows, batch 32, 2 epochs: 20 steps (the last 64 rows validate). */
const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };
const DATA = twoClassProblem(400);

/** Largest absolute difference between two Histories, over the keys matching `keys`. */
function historyDiff(a: Record<string, number[]>, b: Record<string, number[]>, keys = /./): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const key of Object.keys(a).filter((k) => keys.test(k))) {
    a[key]!.forEach((v, i) => m = Math.max(m, Math.abs(v - b[key]![i]!)));
  }
  return m;
}

async function inProcess(kind: Kind) {
  const model = build(kind);
  const history = await model.fit(DATA.x, DATA.y, FIT);
  return { model, history: history.history as Record<string, number[]> };
}

/** Children of this process whose command line mentions `needle`. */
function childProcesses(needle: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (ppid === Deno.pid && cmd.includes(needle)) found.push(`${entry.name}: ${cmd}`);
    } catch {
      // Exited while listing.
    }
  }
  return found;
}

/** Bulk data over the data plane (direct) and through NATS: both give the in-process results. */
const TRANSPORTS = ["direct", "nats"] as const;

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: 1, 2 and 3 workers end with the in-process weights and History`, async () => {
    const local = await inProcess("dense");
    for (const workers of [1, 2, 3]) {
      const model = build("dense");
      const log = new EventLog();
      const history = await model.fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: { workers, transport, listeners: log.listeners },
      });
      assert.equal(model.lastFit!.workers, workers);
      const links = log.all("joined").map((e) => e.link);
      assert.deepEqual(links, Array(workers).fill(transport), "every worker joined on the job's transport");
      assert.equal(model.lastFit!.steps, 20);
      assert.equal(
        model.lastFit!.timings.shared_replies,
        transport === "direct" ? 20 * workers : 0,
        "local workers on the data plane hand their gradients over in shared memory",
      );
      const diff = maxAbsDiff(model.network.params, local.model.network.params);
      assert.ok(diff <= 1e-5, `${workers} workers: max abs weight difference ${diff} > 1e-5`);
      const h = historyDiff(history.history as Record<string, number[]>, local.history);
      assert.ok(h <= 1e-5, `${workers} workers: History differs by ${h}`);
    }
  });

  Deno.test(`${transport}: Dropout and whole-batch BatchNorm: 2 and 3 workers match the in-process History`, async () => {
    for (const kind of ["dropout", "batchnorm"] as const) {
      const local = await inProcess(kind);
      for (const workers of [2, 3]) {
        const model = build(kind);
        const history = await model.fit(DATA.x, DATA.y, { ...FIT, distribute: { workers, transport } });
        assert.equal(
          model.lastFit!.timings.shared_exchanges,
          kind === "batchnorm" && transport === "direct" ? 20 : 0,
          "local workers exchange BatchNorm statistics in shared memory, every step",
        );
        const h = historyDiff(history.history as Record<string, number[]>, local.history);
        assert.ok(h <= 1e-4, `${kind}, ${workers} workers: History differs by ${h}`);
        const diff = maxAbsDiff(model.network.params, local.model.network.params);
        assert.ok(diff <= 1e-5, `${kind}, ${workers} workers: max abs weight difference ${diff}`);
        const stateDiff = maxAbsDiff(model.network.state, local.model.network.state);
        assert.ok(stateDiff <= 1e-5, `${kind}, ${workers} workers: moving statistics differ by ${stateDiff}`);
      }
    }
  });

  Deno.test(`${transport}: BatchNorm: a lost or rejected slice runs the whole step again on the survivors`, async () => {
    const local = await inProcess("batchnorm");
    const model = build("batchnorm");
    const log = new EventLog();
    const history = await model.fit(DATA.x, DATA.y, {
      ...FIT,
      distribute: {
        workers: 3,
        transport,
        listeners: log.listeners,
        workerEntry: FAULTY_WORKER,
        workerArgs: [["--fault", "nan-once"], [], ["--fault", "exit-once"]],
      },
    });
    log.find(
      "reply-rejected",
      (e) => e.worker === "w0" && /non-finite values/.test(e.reason) && !e.recompute,
      "rejection of w0's non-finite reply",
    );
    log.find("dropped", (e) => e.worker === "w2", "drop of w2");
    log.find("attempt-retried");
    assert.equal(model.lastFit!.workers, 2);
    const diff = maxAbsDiff(model.network.params, local.model.network.params);
    assert.ok(diff <= 1e-5, `max abs weight difference ${diff}`);
    const h = historyDiff(history.history as Record<string, number[]>, local.history);
    assert.ok(h <= 1e-4, `History differs by ${h}`);
  });

  Deno.test(`${transport}: faulty replies are rejected with a reason and the step is recomputed`, async () => {
    const local = await inProcess("dense");
    /** Worker `w<i>` runs `faults[i]`; `outcomes[i]` is the event it causes and the reason it gives. */
    type Outcome = ["reply-rejected" | "dropped", RegExp];
    const runs: { faults: string[]; outcomes: Outcome[]; workersAfter: number }[] = [
      {
        faults: ["nan-once", "wrong-length-once", "wrong-step-once"],
        outcomes: [
          ["reply-rejected", /non-finite values/],
          ["reply-rejected", /its gradient has \d+ values/],
          ["reply-rejected", /it is for step 1, not the current step 0/],
        ],
        workersAfter: 3,
      },
      {
        faults: ["wrong-job-once", "wrong-worker-once", "exit-once"],
        outcomes: [
          ["reply-rejected", /it is for job \w+x, not/],
          ["reply-rejected", /unknown worker "w1x"/],
          ["dropped", /no responders|connection closed|process exited with code 3|data connection ended/],
        ],
        workersAfter: 2,
      },
    ];
    for (const run of runs) {
      const model = build("dense");
      const log = new EventLog();
      const history = await model.fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: {
          workers: 3,
          transport,
          listeners: log.listeners,
          workerEntry: FAULTY_WORKER,
          workerArgs: run.faults.map((f) => ["--fault", f]),
        },
      });
      run.outcomes.forEach(([type, reason], i) =>
        log.find(type, (e) => e.worker === `w${i}` && reason.test(e.reason), `${type} of w${i} for ${reason}`)
      );
      assert.equal(model.lastFit!.workers, run.workersAfter);
      const diff = maxAbsDiff(model.network.params, local.model.network.params);
      assert.ok(diff <= 1e-5, `${run.faults}: max abs weight difference ${diff}`);
      assert.ok(historyDiff(history.history as Record<string, number[]>, local.history) <= 1e-5);
    }
  });

  Deno.test(`${transport}: evaluate and predict split over workers combine exactly`, async () => {
    const model = build("batchnorm");
    await model.fit(DATA.x, DATA.y, { ...FIT, epochs: 1 });
    const metrics = [resolveMetric("accuracy", "sparse_categorical_crossentropy", 2)];
    const engine = new Engine(model.network, { loss: "sparse_categorical_crossentropy", metrics, seed: 7 });
    const ds = toDataset(DATA.x, DATA.y);
    const local = new LocalPool(engine, "local");
    await local.setData("d", ds);
    const pool = await createDistributedPool(engine, { workers: 3, backend: "auto", transport });
    try {
      assert.ok(pool instanceof DistributedPool);
      await pool.setData("d", ds);
      await pool.setData("d", ds); // cached on the workers: only the hash travels
      const { params, state } = model.network;
      for (const batchSize of [32, 50, 1000]) {
        assert.deepEqual(
          await pool.evaluate("d", params, state, batchSize),
          await local.evaluate("d", params, state, batchSize),
        );
        assert.deepEqual(
          await pool.predict("d", params, state, batchSize),
          await local.predict("d", params, state, batchSize),
        );
      }
    } finally {
      await pool.close();
    }
  });

  Deno.test(`${transport}: fit with distribute (bf16 gradients) runs end to end and leaves no process behind`, async () => {
    const local = await inProcess("dense");
    const model = build("dense");
    const history = await model.fit(DATA.x, DATA.y, {
      ...FIT,
      distribute: { workers: 2, gradEncoding: "bf16", transport },
    });
    const diff = maxAbsDiff(model.network.params, local.model.network.params);
    assert.ok(diff > 0 && diff < 1e-2, `bf16 gradients: max abs weight difference ${diff}`);
    assert.equal(history.history.loss!.length, 2);
    assert.ok(history.history.val_loss![1]! < history.history.val_loss![0]! + 0.1);
    assert.deepEqual(childProcesses("worker/main.ts"), []);
    assert.deepEqual(childProcesses("nats-server"), []);
  });
}

Deno.test("whole-batch BatchNorm with one worker on the data plane and one through NATS (auto) ends with the in-process weights", async () => {
  const local = await inProcess("batchnorm");
  await using server = await startNatsServer();
  const dataPort = freePort();
  const onPlane = new ExternalWorker("m0", server.url);
  // This process may reach the NATS server, not the data plane: auto sends its bulk data through NATS.
  const natsOnly = new ExternalWorker("m1", server.url, [], [`--deny-net=127.0.0.1:${dataPort}`]);
  const workers = [onPlane, natsOnly];
  try {
    await Promise.all(workers.map((w) => w.waitFor(/connected to/)));
    const model = build("batchnorm");
    const log = new EventLog();
    const history = await model.fit(DATA.x, DATA.y, {
      ...FIT,
      distribute: {
        nats: server.url,
        workers: 2,
        transport: "auto",
        dataUnix: false,
        dataListen: `127.0.0.1:${dataPort}`,
        listeners: log.listeners,
      },
    });
    const links = Object.fromEntries(log.all("joined").map((e) => [e.worker, e.link]));
    assert.deepEqual(links, { m0: "direct", m1: "nats" }, log.toString());
    assert.ok(!log.has("dropped"), `a worker was dropped:\n${log}`);
    assert.equal(model.lastFit!.workers, 2);
    assert.equal(
      model.lastFit!.timings.shared_exchanges,
      0,
      "the worker on NATS shares no memory: the statistics go through the coordinator",
    );
    const diff = maxAbsDiff(model.network.params, local.model.network.params);
    assert.ok(diff <= 1e-5, `max abs weight difference ${diff}`);
    const stateDiff = maxAbsDiff(model.network.state, local.model.network.state);
    assert.ok(stateDiff <= 1e-5, `moving statistics differ by ${stateDiff}`);
    const h = historyDiff(history.history as Record<string, number[]>, local.history);
    assert.ok(h <= 1e-4, `History differs by ${h}`);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

Deno.test("external workers that never join give an error saying how to start them", async () => {
  await using server = await startNatsServer();
  const model = build("dense");
  const engine = new Engine(model.network, { loss: "sparse_categorical_crossentropy", metrics: [], seed: 7 });
  await assert.rejects(
    createDistributedPool(engine, { workers: 2, nats: server.url, backend: "auto", joinTimeoutSeconds: 0.5 }),
    (error: Error) => {
      assert.match(error.message, /2 workers were needed and 0 joined within 0.5 s/);
      assert.ok(error.message.includes(`deno task worker --nats ${server.url}`));
      return true;
    },
  );
});
