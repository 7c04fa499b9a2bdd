/**
 * What a new user meets first with an external server: training against a stock nats-server (1 MB
 * max_payload, no configuration) with models of 50k, 250k and 575k parameters (2.3 MB of weights,
 * chunked on NATS), a worker that always ends within 5 s of SIGTERM (idle, or blocked in a BatchNorm
 * exchange whose peer stopped), and a worker that hangs before its first step, seen within a deadline
 * derived from what it measured at setup rather than the 120 s request timeout.
 */
import assert from "node:assert/strict";
import { layers } from "../mod.ts";
import type { Model } from "../coordinator/model.ts";
import type { PoolEvent, PoolListener } from "../coordinator/distributed/events.ts";
import { Callback } from "../shared/callbacks/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { FEATURES, twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { ExternalWorker, signal } from "./support/external_worker.ts";
import { maxAbsDiff } from "./support/compare.ts";

const DATA = twoClassProblem(192);
const FIT = { epochs: 1, batchSize: 32, verbose: 0 as const, validationSplit: 0.25 };

/** A two-class model with a second hidden layer of `hidden` units: 19·hidden + 146 parameters. */
const wide = (hidden: number): Model => twoClassModel([new layers.Dense(hidden, { activation: "relu" })]);

function recorder(): { events: PoolEvent[]; listeners: PoolListener[] } {
  const events: PoolEvent[] = [];
  return { events, listeners: [(e) => events.push(e)] };
}

Deno.test("a stock nats-server trains models of 50k, 250k and 575k parameters with an external worker", async () => {
  await using server = await startNatsServer({ configText: "" });
  const worker = new ExternalWorker("s0", server.url);
  try {
    await worker.waitFor(/connected to/);
    const cases = [
      { hidden: 2_624, transport: "nats" },
      { hidden: 13_150, transport: "nats" },
      { hidden: 30_255, transport: "nats" },
      { hidden: 30_255, transport: "direct" },
    ] as const;
    for (const { hidden, transport } of cases) {
      const local = wide(hidden);
      await local.fit(DATA.x, DATA.y, FIT);
      const model = wide(hidden);
      const params = model.network.params.length + model.network.state.length;
      assert.equal(params, (16 + 1 + 2) * hidden + 16 * (FEATURES + 1) + 2);
      const { events, listeners } = recorder();
      await model.fit(DATA.x, DATA.y, {
        ...FIT,
        distribute: { nats: server.url, workers: 1, transport, joinTimeoutSeconds: 30, listeners },
      });
      const trouble = events.filter((e) => !["joined", "data-lost"].includes(e.type));
      assert.deepEqual(trouble, [], `${transport}: the run had to recover`);
      const diff = maxAbsDiff(model.network.params, local.network.params);
      assert.ok(diff <= 1e-5, `${params} parameters over ${transport}: max abs weight difference ${diff}`);
    }
    assert.ok(!worker.lines.some((l) => /parse error|reader closed/.test(l)), worker.lines.join("\n"));
  } finally {
    await worker.stop();
  }
});

/** Sends SIGTERM and returns the milliseconds until the process exited, and its status. */
async function timedStop(worker: ExternalWorker): Promise<{ ms: number; status: Deno.CommandStatus }> {
  const t0 = performance.now();
  const status = await worker.stop("SIGTERM");
  return { ms: performance.now() - t0, status };
}

Deno.test("SIGTERM ends an idle worker at once", async () => {
  await using server = await startNatsServer();
  const worker = new ExternalWorker("q0", server.url);
  await worker.waitFor(/connected to/);
  const { ms, status } = await timedStop(worker);
  console.log(`idle worker ended ${ms.toFixed(0)} ms after SIGTERM`);
  assert.equal(status.code, 0);
  assert.ok(ms < 5000, `ended ${ms} ms after SIGTERM`);
});

for (const transport of ["direct", "nats"] as const) {
  Deno.test(`${transport}: SIGTERM ends a worker blocked in a BatchNorm exchange within 5 s`, async () => {
    await using server = await startNatsServer();
    const [a, b] = ["b0", "b1"].map((name) => new ExternalWorker(name, server.url));
    const stopFit = new AbortController();
    let result: { ms: number; status: Deno.CommandStatus } | undefined;
    let abortedAt = 0;
    try {
      await Promise.all([a!, b!].map((w) => w.waitFor(/connected to/)));
      // After step 2, b1 stops: b0 blocks in the next step's first exchange, waiting for b1's part.
      const trap = new (class extends Callback {
        #n = 0;
        override onBatchEnd(): void {
          if (this.#n++ !== 2) return;
          signal(b!.pid, "SIGSTOP");
          setTimeout(async () => {
            result = await timedStop(a!);
            abortedAt = performance.now();
            stopFit.abort(new Error("the test is done"));
          }, 500);
        }
      })();
      const model = twoClassModel([new layers.BatchNormalization()]);
      await model.fit(DATA.x, DATA.y, {
        ...FIT,
        epochs: 50,
        callbacks: [trap],
        signal: stopFit.signal,
        distribute: { nats: server.url, workers: 2, transport, quiet: true, stepTimeoutFloorSeconds: 30 },
      }).then(
        () => assert.fail("the fit was not stopped"),
        (error) => assert.match(String(error), /TrainingInterruptedError/),
      );
      // The stop request also ended the step in flight, which waited for the stopped peer.
      const fitEnded = performance.now() - abortedAt;
      assert.ok(fitEnded < 5000, `the fit ended ${fitEnded} ms after its stop request`);
      assert.ok(result, "the worker was stopped");
      console.log(
        `${transport}: worker blocked in an exchange ended ${result.ms.toFixed(0)} ms after SIGTERM`,
      );
      assert.ok(result.ms < 5000, `ended ${result.ms} ms after SIGTERM`);
      assert.equal(result.status.code, 0, a!.lines.join("\n"));
    } finally {
      signal(b!.pid, "SIGCONT");
      await Promise.all([a!, b!].map((w) => w.stop("SIGKILL")));
    }
  });
}

Deno.test("a worker that hangs before its first step is dropped within its derived deadline", async () => {
  await using server = await startNatsServer();
  const workers = ["h0", "h1"].map((name) => new ExternalWorker(name, server.url));
  try {
    await Promise.all(workers.map((w) => w.waitFor(/connected to/)));
    let stoppedAt = 0;
    const hang = new (class extends Callback {
      override onTrainBegin(): void {
        signal(workers[1]!.pid, "SIGSTOP");
        stoppedAt = performance.now();
      }
    })();
    const { events, listeners } = recorder();
    let droppedAt = 0;
    const model = twoClassModel();
    await model.fit(DATA.x, DATA.y, {
      ...FIT,
      callbacks: [hang],
      distribute: {
        nats: server.url,
        workers: 2,
        listeners: [...listeners, (e) => void (e.type === "dropped" && (droppedAt = performance.now()))],
      },
    });
    const dropped = events.find((e) => e.type === "dropped");
    assert.ok(dropped?.type === "dropped" && dropped.worker === "h1", JSON.stringify(events));
    const deadline = Number(/step deadline of ([\d.]+) s/.exec(dropped.reason)?.[1]);
    const waited = droppedAt - stoppedAt;
    console.log(
      `a worker hung before step 0 was dropped after ${waited.toFixed(0)} ms (deadline ${deadline} s)`,
    );
    assert.ok(deadline < 10, `the first deadline is ${deadline} s, not derived from the worker's setup`);
    assert.ok(waited < 12_000, `dropped ${waited} ms after it hung`);
    assert.equal(model.lastFit!.samplesProcessed, 144);
  } finally {
    signal(workers[1]!.pid, "SIGCONT");
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
  }
});
