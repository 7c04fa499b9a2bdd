/**
 * Whole-batch BatchNormalization across worker processes when one of them stops: local workers
 * exchange the statistics in shared memory, so a stopped worker leaves the others waiting there until
 * the coordinator gives the attempt up. The run must still cover every sample once and end where the
 * in-process run ends, and the stopped worker, continued, must not disturb later exchanges.
 */
import assert from "node:assert/strict";
import { layers } from "../mod.ts";
import type { PoolEvent } from "../coordinator/distributed/events.ts";
import { Callback } from "../shared/callbacks/mod.ts";
import { signal, workerPid } from "./support/external_worker.ts";
import { twoClassModel, twoClassProblem } from "./support/two_class.ts";

const DATA = twoClassProblem(400);
/** 320 training rows in batches of 32: 20 steps over 2 epochs. */
const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const, validationSplit: 0.2 };

const build = () => twoClassModel([new layers.BatchNormalization(), new layers.Dropout(0.3)]);

Deno.test("BatchNorm in shared memory: a worker stopped mid-run is dropped, continues harmlessly and rejoins", async () => {
  const reference = build();
  await reference.fit(DATA.x, DATA.y, FIT);

  const model = build();
  const events: PoolEvent[] = [];
  let stopped: number | undefined;
  const faults = new (class extends Callback {
    #batches = 0;
    override async onBatchEnd(): Promise<void> {
      const n = this.#batches++;
      if (n === 3) {
        stopped = workerPid("w1");
        signal(stopped, "SIGSTOP");
      } else if (n === 4) {
        signal(stopped!, "SIGCONT");
      } else if (n > 4 && !events.some((e) => e.type === "joined" && e.worker === "w1" && e.rejoined)) {
        // Room for w1 to hear it was dropped and join again; a step boundary admits it.
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  })();
  try {
    await model.fit(DATA.x, DATA.y, {
      ...FIT,
      callbacks: [faults],
      distribute: {
        workers: 3,
        transport: "direct",
        stepTimeoutFloorSeconds: 1,
        heartbeatSeconds: 0.2,
        listeners: [(e) => events.push(e)],
      },
    });
  } finally {
    if (stopped !== undefined) signal(stopped, "SIGCONT");
  }
  assert.ok(events.some((e) => e.type === "dropped" && e.worker === "w1"), "w1 was dropped");
  assert.ok(events.some((e) => e.type === "attempt-retried"), "the stopped step ran again");
  assert.ok(events.some((e) => e.type === "joined" && e.worker === "w1" && e.rejoined), "w1 rejoined");
  const fit = model.lastFit!;
  assert.equal(fit.samplesProcessed, 2 * 320, "every sample once");
  assert.equal(fit.steps, 20);
  assert.ok(fit.timings.shared_exchanges >= 20, `${fit.timings.shared_exchanges} attempts in shared memory`);
  let diff = 0;
  model.network.params.forEach((v, i) => diff = Math.max(diff, Math.abs(v - reference.network.params[i]!)));
  assert.ok(diff <= 1e-5, `max abs weight difference to the in-process run is ${diff}`);
  let stateDiff = 0;
  model.network.state.forEach((v, i) =>
    stateDiff = Math.max(stateDiff, Math.abs(v - reference.network.state[i]!))
  );
  assert.ok(stateDiff <= 1e-5, `moving statistics differ by ${stateDiff}`);
});
