/**
 * Training on datasets read by row: `fit(dataset)` in-process equals `fit(x, y)` on the same rows,
 * real workers that open the shards themselves end with the in-process weights, and a worker that
 * cannot see the files says so and the run stops.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { callbacks, datasets } from "../mod.ts";
import { encodeNpy } from "../shared/io/npy.ts";
import { FEATURES, twoClassModel, twoClassProblem } from "./support/two_class.ts";
import { DatasetError } from "../shared/io/dataset_error.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { ExternalWorker } from "./support/external_worker.ts";
import { EventLog } from "./support/pool_events.ts";
import { maxAbsDiff } from "./support/compare.ts";

const DATA = twoClassProblem(400);
const TRAIN_ROWS = 320;

function rowsOf(a: { data: Float32Array; shape: number[] }, start: number, end: number) {
  const r = a.shape.slice(1).reduce((p, d) => p * d, 1);
  return { data: a.data.slice(start * r, end * r), shape: [end - start, ...a.shape.slice(1)] };
}

/** Writes rows `start..end` as an npz shard (x float32, y uint8, stored like numpy.savez). */
async function writeShard(path: string, start: number, end: number): Promise<void> {
  const y = Uint8Array.from(DATA.y.data.subarray(start, end));
  await Deno.writeFile(
    path,
    zipSync({
      "x.npy": [encodeNpy(rowsOf(DATA.x, start, end)), { level: 0 }],
      "y.npy": [encodeNpy({ data: y, shape: [end - start] }), { level: 0 }],
    }),
  );
}

async function withShards<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-datasets-test-" });
  try {
    await writeShard(join(dir, "train-0.npz"), 0, 100);
    await writeShard(join(dir, "train-1.npz"), 100, 220);
    await writeShard(join(dir, "train-2.npz"), 220, TRAIN_ROWS);
    await writeShard(join(dir, "val.npz"), TRAIN_ROWS, 400);
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const FIT = { epochs: 2, batchSize: 32, verbose: 0 as const };

async function arraysRun() {
  const model = twoClassModel();
  const history = await model.fit(rowsOf(DATA.x, 0, TRAIN_ROWS), rowsOf(DATA.y, 0, TRAIN_ROWS), {
    ...FIT,
    validationData: [rowsOf(DATA.x, TRAIN_ROWS, 400), rowsOf(DATA.y, TRAIN_ROWS, 400)],
  });
  return { model, history: history.history as Record<string, number[]> };
}

Deno.test("fit, evaluate and predict on npz shards equal the same calls on the arrays", async () => {
  const reference = await arraysRun();
  await withShards(async (dir) => {
    const train = await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" });
    const val = await datasets.fromNpz(join(dir, "val.npz"), { x: "x", y: "y" });
    assert.equal(train.length, TRAIN_ROWS);
    const model = twoClassModel();
    const history = await model.fit(train, { ...FIT, validationData: val });
    assert.deepEqual(model.network.params, reference.model.network.params);
    assert.deepEqual(history.history, reference.history);
    assert.equal(model.lastFit!.samplesProcessed, 2 * TRAIN_ROWS);
    const onArrays = await model.evaluate(rowsOf(DATA.x, TRAIN_ROWS, 400), rowsOf(DATA.y, TRAIN_ROWS, 400), {
      verbose: 0,
    });
    assert.deepEqual(await model.evaluate(val, { verbose: 0 }), onArrays);
    const predicted = model.predict(val, { verbose: 0 });
    const expected = model.predict(rowsOf(DATA.x, TRAIN_ROWS, 400), { verbose: 0 });
    assert.deepEqual((await predicted).dataSync(), (await expected).dataSync());
    await assert.rejects(
      model.fit(train, { ...FIT, validationSplit: 0.2 }),
      /Cannot split rows off a file-backed dataset .* pass validationData/,
    );
  });
});

Deno.test("a shuffle buffer and CSV files train every row once per epoch", async () => {
  await withShards(async (dir) => {
    const train = (await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" })).shuffle(50);
    const model = twoClassModel();
    await model.fit(train, FIT);
    assert.equal(model.lastFit!.samplesProcessed, 2 * TRAIN_ROWS);
    const again = twoClassModel();
    await again.fit(train, FIT);
    assert.deepEqual(
      again.network.params,
      model.network.params,
      "the same (seed, epoch) gives the same order",
    );
    const reference = await arraysRun();
    assert.notDeepEqual(model.network.params, reference.model.network.params);

    const header = [...Array(FEATURES).keys()].map((j) => `f${j}`);
    const lines = [[...header, "label"].join(",")];
    for (let i = 0; i < TRAIN_ROWS; i++) {
      lines.push([...DATA.x.data.subarray(i * FEATURES, (i + 1) * FEATURES), DATA.y.data[i]].join(","));
    }
    await Deno.writeTextFile(join(dir, "train.csv"), lines.join("\n") + "\n");
    const csv = await datasets.fromCsv(join(dir, "train.csv"), { x: header, y: "label" });
    const fromCsv = twoClassModel();
    await fromCsv.fit(csv, FIT);
    const fromArrays = twoClassModel();
    await fromArrays.fit(rowsOf(DATA.x, 0, TRAIN_ROWS), rowsOf(DATA.y, 0, TRAIN_ROWS), FIT);
    assert.ok(maxAbsDiff(fromCsv.network.params, fromArrays.network.params) <= 1e-6);
  });
});

Deno.test("2 workers that open the shards themselves end with the in-process weights", async () => {
  const reference = await arraysRun();
  await withShards(async (dir) => {
    const train = await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" });
    const val = await datasets.fromNpz(join(dir, "val.npz"), { x: "x", y: "y" });
    const model = twoClassModel();
    const history = await model.fit(train, { ...FIT, validationData: val, distribute: { workers: 2 } });
    assert.equal(model.lastFit!.workers, 2);
    assert.equal(model.lastFit!.samplesProcessed, 2 * TRAIN_ROWS);
    const diff = maxAbsDiff(model.network.params, reference.model.network.params);
    assert.ok(diff <= 1e-5, `max abs weight difference ${diff} > 1e-5`);
    const h = history.history as Record<string, number[]>;
    for (const key of Object.keys(reference.history)) {
      reference.history[key]!.forEach((v, i) => assert.ok(Math.abs(v - h[key]![i]!) <= 1e-5, `${key}[${i}]`));
    }
  });
});

Deno.test("when no worker can open the shards the run ends with an error naming the path and the host", async () => {
  await withShards(async (dir) => {
    const train = await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" });
    await Deno.rename(join(dir, "train-1.npz"), join(dir, "moved.npz"));
    const model = twoClassModel();
    await assert.rejects(
      model.fit(train, { ...FIT, distribute: { workers: 1 } }),
      (e: Error) =>
        e instanceof DatasetError && e.message.includes(join(dir, "train-1.npz")) &&
        e.message.includes(`host ${Deno.hostname()}`) &&
        /no worker could open its files \(worker w0: .*\)\. Mount the dataset at the same path/.test(
          e.message,
        ),
    );
  });
});

Deno.test("a worker that cannot read the shards says so and leaves; the run ends on the others with the same weights", async () => {
  const reference = await arraysRun();
  await withShards(async (dir) => {
    await using server = await startNatsServer();
    const blind = new ExternalWorker("blind", server.url, [], [`--deny-read=${dir}`]);
    const sees = new ExternalWorker("sees", server.url);
    try {
      const log = new EventLog();
      const train = await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" });
      const model = twoClassModel();
      await model.fit(train, {
        ...FIT,
        distribute: { nats: server.url, workers: 2, listeners: log.listeners },
      });
      const refused = log.find("refused", (e) => e.worker === "blind");
      assert.match(refused.reason, /could not open dataset "train"/);
      assert.ok(refused.reason.includes(join(dir, "train-0.npz")), refused.reason);
      assert.ok(refused.reason.includes(`host ${Deno.hostname()}`), refused.reason);
      assert.ok(!log.has("refused", (e) => e.worker === "sees"), log.toString());
      await blind.waitFor(/leaving job .*Cannot open .*train-0\.npz on host /);
      assert.equal(model.lastFit!.workers, 1);
      assert.equal(model.lastFit!.samplesProcessed, 2 * TRAIN_ROWS);
      const diff = maxAbsDiff(model.network.params, reference.model.network.params);
      assert.ok(diff <= 1e-5, `max abs weight difference ${diff} > 1e-5`);
    } finally {
      await Promise.all([blind.stop(), sees.stop()]);
    }
  });
});

Deno.test("a run on shards with a shuffle buffer, interrupted mid-epoch and resumed, ends with the whole run's weights", async () => {
  await withShards(async (dir) => {
    const train = (await datasets.fromNpz(join(dir, "train-*.npz"), { x: "x", y: "y" })).shuffle(40);
    const whole = twoClassModel();
    await whole.fit(train, { ...FIT, epochs: 3 });
    const backupDir = join(dir, "backup");
    const stop = new AbortController();
    /** Stops the run after batch 5 of epoch 2. */
    class StopAt extends callbacks.Callback {
      #epoch = 0;
      override onEpochBegin(epoch: number): void {
        this.#epoch = epoch;
      }
      override onBatchEnd(batch: number): void {
        if (this.#epoch === 1 && batch === 4) stop.abort("test stop");
      }
    }
    const broken = twoClassModel();
    await assert.rejects(
      broken.fit(train, {
        ...FIT,
        epochs: 3,
        signal: stop.signal,
        callbacks: [new StopAt(), new callbacks.BackupAndRestore({ backupDir })],
      }),
      /interrupted/i,
    );
    const resumed = twoClassModel();
    await resumed.fit(train, {
      ...FIT,
      epochs: 3,
      callbacks: [new callbacks.BackupAndRestore({ backupDir })],
    });
    assert.ok(resumed.lastFit!.resumedFrom !== null, "the second fit resumed from the backup");
    assert.equal(resumed.lastFit!.resumedFrom!.epoch, 1);
    assert.deepEqual(resumed.network.params, whole.network.params);
  });
});
