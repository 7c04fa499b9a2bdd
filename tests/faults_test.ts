/**
 * Fault tolerance of distributed training, with a real nats-server and real worker processes: a
 * killed or stopped worker is dropped and its slice recomputed, workers join mid-run, `minWorkers`
 * pauses the run (and gives up with a typed error), a server restart is survived, and an external
 * worker outlives its coordinator. Every run must account for each sample exactly once and end
 * within float tolerance of a clean in-process run.
 */
import assert from "node:assert/strict";
import type { Model } from "../coordinator/model.ts";
import { NotEnoughWorkersError } from "../coordinator/distributed/pool.ts";
import { TrainingInterruptedError } from "../coordinator/trainer.ts";
import { ExternalWorker, signal, workerPid } from "./support/external_worker.ts";
import { Callback } from "../shared/callbacks/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { FEATURES, twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { EventLog } from "./support/pool_events.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const DATA = twoClassProblem(400);
/** 320 training rows in batches of 32: 10 steps per epoch, 20 in all. */
const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };
const TRAIN_ROWS = 320;

const build = (): Model => twoClassModel();

/** The in-process run every faulty run is compared with (computed once). */
const clean = (() => {
  let run: Promise<{ params: Float32Array; history: Record<string, number[]> }> | undefined;
  return () =>
    run ??= (async () => {
      const model = build();
      const history = await model.fit(DATA.x, DATA.y, FIT);
      return { params: model.network.params.slice(), history: history.history as Record<string, number[]> };
    })();
})();

/** Asserts the fit covered every sample once and ended where the clean run ends. */
async function assertLikeClean(model: Model, history: Record<string, number[]>, what: string): Promise<void> {
  const reference = await clean();
  assert.equal(model.lastFit!.samplesProcessed, FIT.epochs * TRAIN_ROWS, `${what}: samples processed`);
  assert.equal(model.lastFit!.steps, 20, `${what}: steps`);
  let diff = 0;
  model.network.params.forEach((v, i) => diff = Math.max(diff, Math.abs(v - reference.params[i]!)));
  assert.ok(diff <= 1e-5, `${what}: max abs weight difference to the clean run is ${diff}`);
  const loss = history.val_loss!.at(-1)!, cleanLoss = reference.history.val_loss!.at(-1)!;
  assert.ok(Math.abs(loss - cleanLoss) <= 1e-4, `${what}: val_loss ${loss} vs clean ${cleanLoss}`);
}

/** Runs `action` at the end of batch `batch` of epoch `epoch` (or at its start with `begin`). */
class At extends Callback {
  #epoch = 0;
  constructor(
    readonly epoch: number,
    readonly batch: number,
    readonly action: () => void | Promise<void>,
    readonly begin = false,
  ) {
    super();
  }
  override onEpochBegin(epoch: number): void {
    this.#epoch = epoch;
  }
  override async onBatchBegin(batch: number): Promise<void> {
    if (this.begin && this.#epoch === this.epoch && batch === this.batch) await this.action();
  }
  override async onBatchEnd(batch: number): Promise<void> {
    if (!this.begin && this.#epoch === this.epoch && batch === this.batch) await this.action();
  }
}

/** Bulk data over the data plane, and through NATS: every fault test runs on both. */
const TRANSPORTS = ["direct", "nats"] as const;

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: a SIGKILLed worker is dropped at once and its slice recomputed by the survivors`, async () => {
    const model = build();
    let killedAt = 0;
    const kill = new At(0, 3, () => {
      signal(workerPid("w1"), "SIGKILL");
      killedAt = performance.now();
    });
    const log = new EventLog();
    const history = await model.fit(DATA.x, DATA.y, {
      ...FIT,
      callbacks: [kill],
      distribute: { workers: 3, transport, listeners: log.listeners },
    });
    const lost = log.find(
      "dropped",
      (e) =>
        e.worker === "w1" && (e.step === 3 || e.step === 4) && e.workers === 2 &&
        /^(its process was killed by SIGKILL|no responders|its connection closed|its data connection ended)/
          .test(e.reason),
      "drop of w1 at step 3 or 4 for its death",
    );
    console.log(
      `${transport}: SIGKILL detected after ${(lost.at - killedAt).toFixed(0)} ms (embedded worker)`,
    );
    assert.ok(lost.at - killedAt < 1000, `SIGKILL detected after ${lost.at - killedAt} ms`);
    assert.equal(model.lastFit!.workers, 2);
    await assertLikeClean(model, history.history as Record<string, number[]>, "SIGKILL");
  });

  Deno.test(`${transport}: a SIGSTOPped worker misses its measured step deadline, is dropped, and rejoins when continued`, async () => {
    const model = build();
    let stopped: number | undefined, stoppedAt = 0;
    try {
      const log = new EventLog();
      const rejoined = () => log.has("joined", (e) => e.worker === "w1" && e.rejoined);
      const faults = new (class extends Callback {
        #batches = 0;
        override async onBatchEnd(): Promise<void> {
          const n = this.#batches++;
          if (n === 3) {
            stopped = workerPid("w1");
            signal(stopped, "SIGSTOP");
            stoppedAt = performance.now();
          } else if (n === 4) {
            signal(stopped!, "SIGCONT");
          } else if (n > 4 && !rejoined()) {
            // Room for w1 to hear it was dropped and join again; a step boundary admits it.
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      })();
      const history = await model.fit(DATA.x, DATA.y, {
        ...FIT,
        callbacks: [faults],
        distribute: {
          workers: 3,
          stepTimeoutFloorSeconds: 1,
          heartbeatSeconds: 0.2,
          transport,
          listeners: log.listeners,
        },
      });
      const lost = log.find(
        "dropped",
        (e) => e.worker === "w1" && e.step === 4 && e.workers === 2 && e.deadlineSeconds !== undefined,
        "drop of w1 at step 4 for a missed deadline",
      );
      assert.match(lost.reason, /^no reply within its step deadline/);
      const deadlineMs = lost.deadlineSeconds! * 1000;
      const latency = lost.at - stoppedAt;
      console.log(
        `${transport}: SIGSTOP detected after ${
          latency.toFixed(0)
        } ms (measured step deadline ${deadlineMs} ms)`,
      );
      assert.ok(deadlineMs < 10_000, `the step deadline ${deadlineMs} ms was not measured`);
      assert.ok(
        latency >= deadlineMs - 100 && latency <= deadlineMs + 1000,
        `SIGSTOP detected after ${latency} ms`,
      );
      const back = log.find("joined", (e) => e.worker === "w1" && e.rejoined, "rejoin of w1");
      assert.equal(back.workers, 3);
      assert.ok(back.at > lost.at && back.step > lost.step, `w1 rejoined before it was dropped:\n${log}`);
      assert.equal(model.lastFit!.workers, 3);
      await assertLikeClean(model, history.history as Record<string, number[]>, "SIGSTOP");
    } finally {
      if (stopped !== undefined) signal(stopped, "SIGCONT");
    }
  });

  Deno.test(`${transport}: external workers: join mid-run, minWorkers pause and timeout, server restart, coordinator restart`, async (t) => {
    await using server = await startNatsServer();
    const url = server.url;
    const fleet = new Map<string, ExternalWorker>();
    const spawn = (name: string) => {
      const w = new ExternalWorker(name, url);
      fleet.set(name, w);
      return w;
    };
    const retire = async (name: string, sig: Deno.Signal = "SIGTERM") => {
      await fleet.get(name)!.stop(sig);
      fleet.delete(name);
    };
    const common = { nats: url, heartbeatSeconds: 0.2, transport };
    try {
      await Promise.all([spawn("a0"), spawn("a1")].map((w) => w.waitFor(/connected to/)));

      await t.step("a worker started mid-run joins at a step boundary", async () => {
        const model = build();
        const log = new EventLog();
        const admitted = () => log.has("joined", (e) => e.worker === "a2");
        let asked = false;
        const add = new At(0, 1, async () => {
          // The pool says nothing until a boundary admits a2: the worker's own line says it asked.
          await spawn("a2").waitFor(/Worker a2 joined job/);
          asked = true;
        });
        const room = new (class extends Callback {
          override async onBatchEnd(): Promise<void> {
            // The datasets reach a2 after it asked; a later boundary admits it.
            if (asked && !admitted()) await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })();
        const history = await model.fit(DATA.x, DATA.y, {
          ...FIT,
          callbacks: [add, room],
          distribute: { ...common, workers: 2, maxWorkers: 3, listeners: log.listeners },
        });
        const joined = log.find("joined", (e) => e.worker === "a2", "admission of a2");
        assert.ok(
          joined.step > 1 && joined.workers === 3 && !joined.rejoined,
          `a2 joined as ${JSON.stringify(joined)}`,
        );
        assert.equal(model.lastFit!.workers, 3);
        await assertLikeClean(model, history.history as Record<string, number[]>, "join");
      });

      await t.step("below minWorkers the run pauses, then resumes when a worker starts", async () => {
        await retire("a2");
        const model = build();
        let killedAt = 0;
        const replace = new At(0, 3, () => {
          signal(fleet.get("a1")!.pid, "SIGKILL");
          killedAt = performance.now();
          spawn("a3");
        });
        const log = new EventLog();
        const history = await model.fit(DATA.x, DATA.y, {
          ...FIT,
          callbacks: [replace],
          distribute: {
            ...common,
            workers: 2,
            minWorkers: 2,
            joinTimeoutSeconds: 30,
            listeners: log.listeners,
          },
        });
        await retire("a1");
        const lost = log.find(
          "dropped",
          (e) =>
            e.worker === "a1" && e.step === 4 && e.workers === 1 &&
            /no responders|data connection ended/.test(e.reason),
          "drop of a1 at step 4 for its death",
        );
        console.log(
          `SIGKILL of an external worker detected after ${
            (lost.at - killedAt).toFixed(0)
          } ms (no responders)`,
        );
        assert.ok(lost.at - killedAt < 2000, `SIGKILL detected after ${lost.at - killedAt} ms`);
        const paused = log.find("paused", (e) => e.step === 5, "pause at step 5");
        assert.deepEqual([paused.workers, paused.of, paused.needed], [1, 2, 2]);
        assert.ok(
          paused.hint.includes(`deno task worker --nats ${url}`),
          `the pause does not say how to start a worker: ${paused.hint}`,
        );
        const joined = log.find("joined", (e) => e.worker === "a3", "admission of a3");
        const resumed = log.find("resumed", () => true, "resumption");
        assert.deepEqual([joined.step, joined.workers, resumed.step, resumed.workers], [5, 2, 5, 2]);
        assert.ok(lost.at < paused.at && paused.at < joined.at && joined.at <= resumed.at, log.toString());
        console.log(`paused for ${(resumed.at - paused.at).toFixed(0)} ms while a3 started`);
        await assertLikeClean(model, history.history as Record<string, number[]>, "pause");
      });

      await t.step("below minWorkers with nobody joining, fit throws NotEnoughWorkersError", async () => {
        const model = build();
        const kill = new At(0, 3, () => signal(fleet.get("a3")!.pid, "SIGKILL"));
        const log = new EventLog();
        const started = performance.now();
        await assert.rejects(
          model.fit(DATA.x, DATA.y, {
            ...FIT,
            callbacks: [kill],
            distribute: {
              ...common,
              workers: 2,
              minWorkers: 2,
              joinTimeoutSeconds: 2,
              listeners: log.listeners,
            },
          }),
          (error: unknown) => {
            assert.ok(error instanceof NotEnoughWorkersError, `got ${error}`);
            assert.equal(error.workerCount, 1);
            assert.equal(error.needed, 2);
            assert.equal(error.step, 5);
            assert.match(error.message, /deno task worker --nats/);
            return true;
          },
        );
        assert.ok(performance.now() - started < 20_000);
        const paused = log.find("paused", (e) => e.step === 5, "pause at step 5");
        assert.equal(paused.waitSeconds, 2);
        assert.ok(!log.has("resumed"), `the run resumed:\n${log}`);
        await retire("a3");
      });

      await t.step(
        "a stop request during a pause ends fit at once, before the step that waited",
        async () => {
          await spawn("a5").waitFor(/connected to/);
          const model = build();
          const log = new EventLog();
          const stop = new AbortController();
          let stoppedAt = 0;
          const kill = new At(0, 3, () => {
            signal(fleet.get("a5")!.pid, "SIGKILL");
            setTimeout(() => {
              stoppedAt = performance.now();
              stop.abort("SIGTERM");
            }, 1500);
          });
          await assert.rejects(
            model.fit(DATA.x, DATA.y, {
              ...FIT,
              callbacks: [kill],
              signal: stop.signal,
              distribute: {
                ...common,
                workers: 2,
                minWorkers: 2,
                joinTimeoutSeconds: 60,
                listeners: log.listeners,
              },
            }),
            (error: unknown) => {
              assert.ok(error instanceof TrainingInterruptedError, `got ${error}`);
              assert.deepEqual([error.position.epoch, error.position.batch], [0, 5]);
              assert.match(error.message, /Training interrupted \(SIGTERM\) before batch 6 of epoch 1/);
              return true;
            },
          );
          const waited = performance.now() - stoppedAt;
          console.log(`fit ended ${waited.toFixed(0)} ms after the stop request during the pause`);
          assert.ok(stoppedAt > 0 && waited < 2000, `fit ended ${waited} ms after the stop request`);
          const paused = log.find("paused", (e) => e.step === 5, "pause at step 5");
          assert.ok(paused.at < stoppedAt, `the stop request came before the pause:\n${log}`);
          await retire("a5");
        },
      );

      await t.step(
        "a restart of the server mid-run is survived without a lost or repeated step",
        async () => {
          await spawn("a4").waitFor(/connected to/);
          const model = build();
          const pidBefore = server.pid;
          let restarting: Promise<void> | undefined;
          const restart = new At(0, 3, () => {
            restarting = server.restart();
          }, true);
          const log = new EventLog();
          const history = await model.fit(DATA.x, DATA.y, {
            ...FIT,
            callbacks: [restart],
            distribute: { ...common, workers: 2, listeners: log.listeners },
          });
          await restarting;
          assert.notEqual(server.pid, pidBefore);
          // Over NATS the step waits for the server; over the data plane it need not.
          if (transport === "nats") {
            const down = log.find("disconnected", () => true, "disconnection");
            const back = log.find("reconnected", () => true, "reconnection");
            assert.ok(down.at < back.at, `reconnected before the connection was lost:\n${log}`);
          }
          console.log(`server restart: ${log.all("attempt-retried").length} attempt(s) ran again`);
          assert.equal(model.lastFit!.workers, 2);
          assert.ok(!log.has("dropped"), `a worker was dropped:\n${log}`);
          await assertLikeClean(model, history.history as Record<string, number[]>, "server restart");
        },
      );

      await t.step("external workers outlive a vanished coordinator and serve the next job", async () => {
        const script = `
        import { layers, optimizers, Sequential } from "${ROOT}mod.ts";
        import { createDistributedPool } from "${ROOT}coordinator/distributed/pool.ts";
        import { Engine } from "${ROOT}shared/model/mod.ts";
        const model = new Sequential([new layers.Dense(2, { inputShape: [${FEATURES}] })], { seed: 7 });
        model.compile({ optimizer: new optimizers.SGD(), loss: "mse" });
        const engine = new Engine(model.network, { loss: "mse", metrics: [], seed: 7 });
        await createDistributedPool(engine, { workers: 2, nats: "${url}", backend: "auto", heartbeatSeconds: 0.2, heartbeatMisses: 5, transport: "${transport}" });
        console.log("ready");
        await new Promise(() => {});
      `;
        const coordinator = new Deno.Command(Deno.execPath(), {
          args: ["eval", script],
          cwd: ROOT,
          stdin: "null",
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = coordinator.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("ready")) {
          const { value, done } = await reader.read();
          if (done) break;
          out += value;
        }
        assert.ok(out.includes("ready"), `the coordinator process printed ${out}`);
        const killedAt = performance.now();
        coordinator.kill("SIGKILL");
        await coordinator.status;
        await reader.cancel();
        const joinedBefore = new Map<string, number>();
        for (const w of fleet.values()) {
          await w.waitFor(/leaving the job as vanished/, 15_000);
          await w.waitFor(/left job \w+ \(vanished\); waiting for any job/, 5_000);
          joinedBefore.set(w.name, w.lines.filter((l) => /joined job/.test(l)).length);
        }
        const leftAfter = performance.now() - killedAt;
        console.log(
          `workers left the vanished job after ${leftAfter.toFixed(0)} ms (5 heartbeats of 200 ms)`,
        );
        assert.ok(leftAfter < 5000, `workers left the vanished job after ${leftAfter} ms`);
        const model = build();
        const history = await model.fit(DATA.x, DATA.y, { ...FIT, distribute: { ...common, workers: 2 } });
        assert.equal(model.lastFit!.workers, 2);
        await assertLikeClean(model, history.history as Record<string, number[]>, "next job");
        for (const w of fleet.values()) {
          const joined = w.lines.filter((l) => /joined job/.test(l)).length;
          assert.equal(joined, joinedBefore.get(w.name)! + 1, `worker ${w.name} did not serve the next job`);
        }
      });
    } finally {
      await Promise.all([...fleet.keys()].map((name) => retire(name)));
    }
  });
}
