/**
 * The ring all-reduce with real worker processes over a real nats-server: N workers reducing on a
 * ring end where the in-process run ends (plain, with Dropout, with whole-batch BatchNorm), every step
 * runs on the ring, and the ring's fixed reduction order makes a run reproducible bit for bit. A
 * worker killed or stopped mid-ring is dropped (only it: its neighbours only waited), the step runs
 * again on a ring of the survivors, and every sample is trained on once. A worker whose ring port the
 * others cannot reach sends the step to the star, once, and the run ends as in-process.
 */
import assert from "node:assert/strict";
import { layers } from "../mod.ts";
import type { Model } from "../coordinator/model.ts";
import { twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { EventLog } from "./support/pool_events.ts";
import { FAULTY_WORKER } from "./support/faulty_worker.ts";
import { Callback } from "../shared/callbacks/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { ExternalWorker } from "./support/external_worker.ts";
import { freePort } from "./support/free_port.ts";
import { maxAbsDiff } from "./support/compare.ts";

type Kind = "dense" | "batchnorm";

/** `batchnorm`: BatchNormalization then Dropout, so masks and whole-batch statistics both count. */
const build = (kind: Kind): Model =>
  twoClassModel(kind === "batchnorm" ? [new layers.BatchNormalization(), new layers.Dropout(0.3)] : []);

/** 320 rows, batch 32, 2 epochs: 20 steps (the last 64 rows validate). */
const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };
const DATA = twoClassProblem(400);

function historyDiff(a: Record<string, number[]>, b: Record<string, number[]>): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const key of Object.keys(a)) a[key]!.forEach((v, i) => m = Math.max(m, Math.abs(v - b[key]![i]!)));
  return m;
}

async function inProcess(kind: Kind) {
  const model = build(kind);
  const history = await model.fit(DATA.x, DATA.y, FIT);
  return { model, history: history.history as Record<string, number[]> };
}

async function onRing(kind: Kind, workers: number, log = new EventLog()) {
  const model = build(kind);
  const history = await model.fit(DATA.x, DATA.y, {
    ...FIT,
    distribute: { workers, allreduce: "ring", listeners: log.listeners },
  });
  assert.equal(model.lastFit!.workers, workers);
  assert.equal(model.lastFit!.steps, 20);
  assert.equal(
    model.lastFit!.timings.ring_steps,
    workers > 1 ? 20 : 0,
    `${workers} workers: every step reduces on the ring (one worker needs no reduction)`,
  );
  return { model, history: history.history as Record<string, number[]> };
}

Deno.test("ring: 1, 2, 3, 5 and 8 workers end with the in-process weights and History", async () => {
  const local = await inProcess("dense");
  for (const workers of [1, 2, 3, 5, 8]) {
    const log = new EventLog();
    const { model, history } = await onRing("dense", workers, log);
    if (workers > 1) {
      const choice = log.find("allreduce", (e) => e.step === 0, "the reduction of the first step");
      assert.deepEqual([choice.use, choice.workers], ["ring", workers]);
    }
    const diff = maxAbsDiff(model.network.params, local.model.network.params);
    assert.ok(diff <= 1e-5, `${workers} workers: max abs weight difference ${diff} > 1e-5`);
    const h = historyDiff(history, local.history);
    assert.ok(h <= 1e-5, `${workers} workers: History differs by ${h}`);
  }
});

Deno.test("ring: Dropout and whole-batch BatchNorm with 2, 3, 5 and 8 workers match the in-process run", async () => {
  const local = await inProcess("batchnorm");
  for (const workers of [2, 3, 5, 8]) {
    const { model, history } = await onRing("batchnorm", workers);
    const h = historyDiff(history, local.history);
    assert.ok(h <= 1e-4, `${workers} workers: History differs by ${h}`);
    const diff = maxAbsDiff(model.network.params, local.model.network.params);
    assert.ok(diff <= 1e-5, `${workers} workers: max abs weight difference ${diff}`);
    const stateDiff = maxAbsDiff(model.network.state, local.model.network.state);
    assert.ok(stateDiff <= 1e-5, `${workers} workers: moving statistics differ by ${stateDiff}`);
  }
});

Deno.test("ring: the reduction order is fixed, so two runs with the same N end with the same bits", async () => {
  const first = await onRing("dense", 3);
  const second = await onRing("dense", 3);
  assert.deepEqual(second.model.network.params, first.model.network.params);
  assert.deepEqual(second.history, first.history);
});

Deno.test("auto keeps a small model on the star and says why", async () => {
  const log = new EventLog();
  const model = build("dense");
  await model.fit(DATA.x, DATA.y, {
    ...FIT,
    epochs: 1,
    distribute: { workers: 3, allreduce: "auto", listeners: log.listeners },
  });
  assert.equal(model.lastFit!.timings.ring_steps, 0);
  const choice = log.find("allreduce", (e) => e.step === 0, "the reduction of the first step");
  assert.equal(choice.use, "star");
  assert.match(choice.reason, /^auto: the model's \d+ bytes are below 1048576/);
});

/** Process ids of this process's children whose command line holds every one of `needles`. */
function childPids(...needles: string[]): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (ppid === Deno.pid && needles.every((n) => cmd.includes(n) || cmd.some((a) => a.endsWith(n)))) {
        found.push(Number(entry.name));
      }
    } catch {
      // Exited while listing.
    }
  }
  return found;
}

/** Asserts a faulty ring run trained on every sample once, applied 20 steps, and ended like the clean run. */
async function assertLikeClean(model: Model, history: Record<string, number[]>, what: string) {
  const clean = await inProcess("dense");
  assert.equal(model.lastFit!.samplesProcessed, FIT.epochs * 320, `${what}: samples processed`);
  assert.equal(model.lastFit!.steps, 20, `${what}: steps applied`);
  assert.equal(model.lastFit!.timings.ring_steps, 20, `${what}: every applied step reduced on a ring`);
  const diff = maxAbsDiff(model.network.params, clean.model.network.params);
  assert.ok(diff <= 1e-5, `${what}: max abs weight difference to the clean run is ${diff}`);
  const h = historyDiff(history, clean.history);
  assert.ok(h <= 1e-4, `${what}: History differs by ${h}`);
}

Deno.test("ring: a worker SIGKILLed mid-ring is dropped and the step runs again on a ring of the survivors", async () => {
  const log = new EventLog();
  const model = build("dense");
  const history = await model.fit(DATA.x, DATA.y, {
    ...FIT,
    distribute: {
      workers: 3,
      allreduce: "ring",
      listeners: log.listeners,
      workerEntry: FAULTY_WORKER,
      workerArgs: [[], ["--fault", "sigkill-at-step-3"], []],
    },
  });
  const lost = log.find("dropped", (e) => e.worker === "w1", "drop of w1");
  assert.equal(lost.step, 3);
  assert.equal(lost.workers, 2);
  assert.deepEqual(log.all("dropped").map((e) => e.worker), ["w1"], "only the killed worker was dropped");
  log.find("attempt-retried", (e) => e.what === "step 3", "step 3 ran again");
  const ring = log.find("allreduce", (e) => e.step === 3, "the new ring at step 3");
  assert.deepEqual([ring.use, ring.workers], ["ring", 2]);
  assert.equal(model.lastFit!.workers, 2);
  await assertLikeClean(model, history.history as Record<string, number[]>, "SIGKILL");
});

Deno.test("ring: a worker SIGSTOPped mid-ring is found by a probe, dropped, and rejoins the ring when continued", async () => {
  const log = new EventLog();
  const model = build("dense");
  let continued = false;
  const resume = (e: { type: string; worker?: string }) => {
    if (e.type !== "dropped" || e.worker !== "w1" || continued) return;
    continued = true;
    for (const pid of childPids("faulty_worker.ts", "w1")) Deno.kill(pid, "SIGCONT");
  };
  try {
    const history = await model.fit(DATA.x, DATA.y, {
      ...FIT,
      // Room for w1 to hear it was dropped and join again before the run ends.
      callbacks: [
        new (class extends Callback {
          override async onBatchEnd(): Promise<void> {
            if (continued && !log.has("joined", (e) => e.worker === "w1" && e.rejoined)) {
              await new Promise((resolve) => setTimeout(resolve, 200));
            }
          }
        })(),
      ],
      distribute: {
        workers: 3,
        allreduce: "ring",
        stepTimeoutFloorSeconds: 1,
        heartbeatSeconds: 0.2,
        listeners: [...log.listeners, resume],
        workerEntry: FAULTY_WORKER,
        workerArgs: [[], ["--fault", "sigstop-at-step-3"], []],
      },
    });
    const lost = log.find("dropped", (e) => e.worker === "w1", "drop of w1");
    assert.equal(lost.step, 3);
    assert.ok(lost.deadlineSeconds !== undefined, "dropped for a missed deadline");
    assert.match(
      lost.reason,
      /^(no reply within its step deadline|no answer to a probe after worker w\d missed)/,
    );
    assert.deepEqual(
      log.all("dropped").map((e) => e.worker),
      ["w1"],
      "the workers waiting for w1 were not dropped",
    );
    const smaller = log.find("allreduce", (e) => e.step === 3, "the ring of the survivors");
    assert.deepEqual([smaller.use, smaller.workers], ["ring", 2]);
    const back = log.find("joined", (e) => e.worker === "w1" && e.rejoined, "rejoin of w1");
    const grown = log.find("allreduce", (e) => e.step >= back.step && e.workers === 3, "w1 back in the ring");
    assert.equal(grown.use, "ring");
    assert.equal(model.lastFit!.workers, 3);
    await assertLikeClean(model, history.history as Record<string, number[]>, "SIGSTOP");
  } finally {
    for (const pid of childPids("faulty_worker.ts", "w1")) Deno.kill(pid, "SIGCONT");
  }
});

/** Two hidden layers of 512 (1.09 MB of parameters): `auto` takes the ring for it from 3 workers on. */
const wide = (): Model =>
  twoClassModel([new layers.Dense(512, { activation: "relu" }), new layers.Dense(512)]);

for (const allreduce of ["auto", "ring"] as const) {
  Deno.test(`${allreduce}: a worker whose ring port the others cannot reach sends the run to the star, which ends as in-process`, async () => {
    const localModel = wide();
    const local = await localModel.fit(DATA.x, DATA.y, FIT);
    await using server = await startNatsServer();
    const dataPort = freePort(), ringPort = freePort();
    // r1 listens for ring neighbours on a fixed port that r0 and r2 may not dial (a firewall between them).
    const blocked = [`--deny-net=127.0.0.1:${ringPort}`];
    const workers = [
      new ExternalWorker("r0", server.url, [], blocked),
      new ExternalWorker("r1", server.url, ["--ring-listen", `127.0.0.1:${ringPort}`]),
      new ExternalWorker("r2", server.url, [], blocked),
    ];
    try {
      await Promise.all(workers.map((w) => w.waitFor(/connected to/)));
      const log = new EventLog();
      const model = wide();
      const history = await model.fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: {
          nats: server.url,
          workers: 3,
          allreduce,
          // TCP only, as between hosts: a Unix socket would reach r1's ring listener.
          dataUnix: false,
          dataListen: `127.0.0.1:${dataPort}`,
          listeners: log.listeners,
        },
      });
      const star = log.find("allreduce", (e) => e.use === "star", "the fall back to the star");
      assert.equal(star.step, 0, log.toString());
      assert.match(
        star.reason,
        new RegExp(
          `^worker r1's ring address tcp://127\\.0\\.0\\.1:${ringPort} cannot be reached from worker r\\d \\(.+\\): ` +
            "open the workers' ring port to each other \\(start workers with --ring-listen",
        ),
      );
      assert.deepEqual(
        log.all("allreduce").map((e) => [e.use, e.step]),
        [["ring", 0], ["star", 0]],
        "one ring attempt, then the star for good",
      );
      assert.equal(log.all("attempt-retried").length, 1, log.toString());
      const warned = log.has(
        "warning",
        (e) => /^allreduce is ring, but worker r1's ring address/.test(e.message),
      );
      assert.equal(warned, allreduce === "ring", "explicit ring warns with the fix");
      assert.ok(!log.has("dropped"), `a worker was dropped:\n${log}`);
      assert.equal(model.lastFit!.workers, 3);
      assert.equal(model.lastFit!.steps, 20);
      assert.equal(model.lastFit!.timings.ring_steps, 0);
      const diff = maxAbsDiff(model.network.params, localModel.network.params);
      assert.ok(diff <= 1e-5, `max abs weight difference ${diff} > 1e-5`);
      const h = historyDiff(
        history.history as Record<string, number[]>,
        local.history as Record<string, number[]>,
      );
      assert.ok(h <= 1e-4, `History differs by ${h}`);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}
