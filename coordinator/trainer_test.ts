import assert from "node:assert/strict";
import { BackupAndRestore, Callback, CallbackList, type Logs } from "../shared/callbacks/mod.ts";
import { Engine, initBackend, layers, optimizers } from "../shared/model/mod.ts";
import { type Dataset, toDataset } from "./data.ts";
import { LocalPool } from "./local_pool.ts";
import { Sequential } from "./model.ts";
import { TrainingInterruptedError, trainLoop } from "./trainer.ts";

// Tensors in module-level data need an active backend, as in any program that imports mod.ts.
await initBackend("auto");

/** 10 rows of 3 features, a regression target; batch 4 gives 3 steps per epoch, the last of 2 rows. */
const DATA: Dataset = toDataset(
  Array.from({ length: 10 }, (_, i) => [i / 10, (i % 3) / 3, ((i * 7) % 5) / 5]),
  Array.from({ length: 10 }, (_, i) => [(i % 4) / 4]),
);

function compiled(): Sequential {
  const model = new Sequential([
    new layers.Dense(4, { activation: "relu", inputShape: [3] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.2),
    new layers.Dense(1),
  ], { seed: 5 });
  model.compile({ optimizer: new optimizers.Adam({ learningRate: 0.05 }), loss: "mse", metrics: ["mae"] });
  return model;
}

/** Records the loop's calls, and runs `onBatch` after each batch. */
class Recorder extends Callback {
  calls: string[] = [];
  constructor(readonly onBatch: (epoch: number, batch: number) => void = () => {}) {
    super();
  }
  #epoch = -1;
  override onEpochBegin(epoch: number): void {
    this.#epoch = epoch;
    this.calls.push(`epoch ${epoch}`);
  }
  override onBatchEnd(batch: number, logs: Logs): void {
    this.calls.push(`batch ${batch}: ${Object.keys(logs).join(",")}`);
    this.onBatch(this.#epoch, batch);
  }
  override onEpochEnd(epoch: number, logs: Logs): void {
    this.calls.push(`end ${epoch}: ${Object.keys(logs).join(",")}`);
  }
}

async function fitLoop(
  model: Sequential,
  opts: { epochs: number; callbacks?: Callback[]; initialEpoch?: number; signal?: AbortSignal },
) {
  const pool = new LocalPool(
    new Engine(model.network, { loss: "mean_squared_error", metrics: model.compiledMetrics, seed: 5 }),
    "test",
  );
  await pool.setData("train", DATA);
  const callbacks = new CallbackList(opts.callbacks ?? [], {
    model,
    params: { epochs: opts.epochs, steps: 3, verbose: 0 },
  });
  const report = await trainLoop(model, pool, DATA, {
    epochs: opts.epochs,
    batchSize: 4,
    shuffle: true,
    initialEpoch: opts.initialEpoch ?? 0,
    seed: 5,
    validation: false,
    callbacks,
    metrics: model.compiledMetrics,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { report, history: callbacks.history! };
}

Deno.test("the loop runs epochs from initialEpoch, each batch once, with Keras's log names", async () => {
  const recorder = new Recorder();
  const model = compiled();
  const { report, history } = await fitLoop(model, { epochs: 3, initialEpoch: 1, callbacks: [recorder] });
  assert.deepEqual(recorder.calls, [
    "epoch 1",
    "batch 0: mae,loss",
    "batch 1: mae,loss",
    "batch 2: mae,loss",
    "end 1: mae,loss,learning_rate",
    "epoch 2",
    "batch 0: mae,loss",
    "batch 1: mae,loss",
    "batch 2: mae,loss",
    "end 2: mae,loss,learning_rate",
  ]);
  assert.deepEqual([report.epochsRun, report.steps, report.samplesProcessed], [2, 6, 20]);
  assert.equal(model.optimizer.iterations, 6);
  assert.deepEqual(history.epoch, [1, 2]);
  assert.deepEqual(Object.keys(report.timings), ["compute_ms", "reduce_ms", "optimizer_ms"]);
});

Deno.test("stopTraining set by a callback ends the epoch after that batch and the run after that epoch", async () => {
  const model = compiled();
  const recorder = new Recorder((_, batch) => {
    if (batch === 1) model.stopTraining = true;
  });
  const { report } = await fitLoop(model, { epochs: 5, callbacks: [recorder] });
  assert.deepEqual(recorder.calls.filter((c) => !c.startsWith("batch")), [
    "epoch 0",
    "end 0: mae,loss,learning_rate",
  ]);
  assert.deepEqual([report.epochsRun, report.steps], [1, 2]);
});

Deno.test("a run aborted mid-epoch resumes from its backup to the uninterrupted run's weights, bit for bit", async () => {
  const whole = compiled();
  await fitLoop(whole, { epochs: 2 });

  const dir = await Deno.makeTempDir();
  try {
    const stop = new AbortController();
    const first = compiled();
    const error = await fitLoop(first, {
      epochs: 2,
      signal: stop.signal,
      callbacks: [
        new BackupAndRestore({ backupDir: dir }),
        new Recorder((epoch, batch) => {
          if (epoch === 1 && batch === 0) stop.abort("test stop");
        }),
      ],
    }).then(() => null, (e) => e);
    assert.ok(error instanceof TrainingInterruptedError, String(error));
    assert.deepEqual([error.position.epoch, error.position.batch, error.position.runSteps], [1, 1, 4]);
    assert.equal(error.backups, 1);

    // Stopped again two batches after the resume: the position moves on from the restored one.
    const again = new AbortController();
    const stoppedAgain = await fitLoop(compiled(), {
      epochs: 2,
      signal: again.signal,
      callbacks: [
        new BackupAndRestore({ backupDir: dir }),
        new Recorder((_, batch) => {
          if (batch === 2) again.abort("test stop");
        }),
      ],
    }).then(() => null, (e) => e);
    assert.ok(stoppedAgain instanceof TrainingInterruptedError, String(stoppedAgain));
    assert.deepEqual([stoppedAgain.position.epoch, stoppedAgain.position.batch], [1, 3]);
    assert.deepEqual([stoppedAgain.position.seen, stoppedAgain.position.runSteps], [10, 6]);

    const second = compiled();
    const { report } = await fitLoop(second, {
      epochs: 2,
      callbacks: [new BackupAndRestore({ backupDir: dir })],
    });
    assert.deepEqual([report.resumedFrom?.epoch, report.resumedFrom?.batch], [1, 3]);
    assert.deepEqual([report.steps, report.runSamplesProcessed], [0, 20]);
    assert.deepEqual(second.network.params, whole.network.params);
    assert.deepEqual(second.network.state, whole.network.state);
    assert.deepEqual(second.optimizer.slots, whole.optimizer.slots);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two models sharing one optimizer each train their own weights: the second never writes the first's", async () => {
  const shared = new optimizers.Adam({ learningRate: 0.05 });
  const [a, b] = [1, 2].map((seed) => {
    const model = new Sequential([new layers.Dense(3, { inputShape: [3] }), new layers.Dense(1)], { seed });
    model.compile({ optimizer: shared, loss: "mse" });
    return model;
  });
  const x = DATA.inputs[0]!, y = DATA.y!;
  await a!.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
  const aAfter = a!.network.params.slice();
  const bBefore = b!.network.params.slice();
  await b!.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
  assert.deepEqual(a!.network.params, aAfter, "the first model's weights are as its own fit left them");
  assert.notDeepEqual(b!.network.params, bBefore, "the second model trained");
  await a!.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
  assert.notDeepEqual(a!.network.params, aAfter, "the first model trains on");
});
