import assert from "node:assert/strict";
import { join } from "node:path";
import type { CallbackModel, Logs } from "./callback.ts";
import { type NamedWeight, type NamedWeightsModel, TensorBoard } from "./tensorboard.ts";
import {
  type DecodedEvent,
  eventFilesIn,
  histogramRowsOf,
  readEventFile,
  scalarOf,
} from "../io/tensorboard/test_event_reader.ts";

/** A model with the callback view, named weights and a config, and nothing else. */
class FakeModel implements CallbackModel, NamedWeightsModel {
  stopTraining = false;
  optimizer = { learningRate: 0.125, iterations: 0 };
  weights: NamedWeight[] = [
    { name: "dense/kernel", data: Float32Array.from({ length: 12 }, (_, i) => i / 4 - 1) },
    { name: "dense/bias", data: new Float32Array(3) },
  ];
  getWeights(): Float32Array[] {
    return this.weights.map((w) => w.data.slice());
  }
  setWeights(): void {}
  save(): Promise<void> {
    return Promise.resolve();
  }
  saveWeights(): Promise<void> {
    return Promise.resolve();
  }
  namedWeights(): NamedWeight[] {
    return this.weights;
  }
  toJSON(): unknown {
    return { class_name: "Sequential", config: { name: "sequential", layers: [] } };
  }
}

/** Drives `cb` as `fit` would: epochs × steps batches, then validation, then epoch end. */
async function fit(cb: TensorBoard, model: FakeModel, epochs: number, steps: number, withValidation = true) {
  cb.setModel(model);
  cb.setParams({ epochs, steps, verbose: 0 });
  await cb.onTrainBegin();
  for (let epoch = 0; epoch < epochs; epoch++) {
    await cb.onEpochBegin(epoch);
    for (let batch = 0; batch < steps; batch++) {
      await cb.onBatchBegin(batch);
      model.optimizer.iterations++;
      await cb.onBatchEnd(batch, { loss: 1 / (model.optimizer.iterations + 1), accuracy: 0.5 });
    }
    const logs: Record<string, number> = { loss: 1 / 2 ** epoch, accuracy: 0.25 * (epoch + 1) };
    if (withValidation) {
      const val: Logs = { loss: 2 / 2 ** epoch, accuracy: 0.125 * (epoch + 1) };
      await cb.onTestBegin();
      await cb.onTestEnd(val);
      for (const [k, v] of Object.entries(val)) logs[`val_${k}`] = v;
    }
    await cb.onEpochEnd(epoch, logs);
    model.optimizer.learningRate /= 2;
  }
  await cb.onTrainEnd();
}

async function runEvents(dir: string): Promise<DecodedEvent[][]> {
  return await Promise.all((await eventFilesIn(dir)).map(readEventFile));
}

/** `tag -> [[step, value], …]` for the scalar summaries of `events`. */
function scalars(events: DecodedEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const e of events) {
    for (const v of e.values) {
      if (v.pluginName !== "scalars") continue;
      out.set(v.tag, [...(out.get(v.tag) ?? []), [e.step, scalarOf(v.tensor!)]]);
    }
  }
  return out;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-tbcb-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("TensorBoard writes Keras's epoch scalars to train/ and validation/ over 3 epochs", async () => {
  await withTempDir(async (logDir) => {
    await fit(new TensorBoard({ logDir }), new FakeModel(), 3, 2);
    const [train] = await runEvents(join(logDir, "train"));
    const [validation] = await runEvents(join(logDir, "validation"));
    assert.equal(train![0]!.fileVersion, "brain.Event:2");
    assert.equal(validation![0]!.fileVersion, "brain.Event:2");

    const t = scalars(train!);
    assert.deepEqual([...t.keys()].sort(), ["epoch_accuracy", "epoch_learning_rate", "epoch_loss"]);
    assert.deepEqual(t.get("epoch_loss"), [[0, 1], [1, 0.5], [2, 0.25]]);
    assert.deepEqual(t.get("epoch_accuracy"), [[0, 0.25], [1, 0.5], [2, 0.75]]);
    assert.deepEqual(t.get("epoch_learning_rate"), [[0, 0.125], [1, 0.0625], [2, 0.03125]]);

    const v = scalars(validation!);
    assert.deepEqual(v.get("epoch_loss"), [[0, 2], [1, 1], [2, 0.5]]);
    assert.deepEqual(v.get("epoch_accuracy"), [[0, 0.125], [1, 0.25], [2, 0.375]]);
    assert.deepEqual(v.get("evaluation_loss_vs_iterations"), [[2, 2], [4, 1], [6, 0.5]]);
    assert.ok(![...v.keys()].some((k) => k.includes("val_") || k === "epoch_learning_rate"));
  });
});

Deno.test("TensorBoard writes the model config as Keras does: tag keras, plugin graph_keras_model, step 0", async () => {
  await withTempDir(async (logDir) => {
    await fit(new TensorBoard({ logDir }), new FakeModel(), 1, 1, false);
    const [train] = await runEvents(join(logDir, "train"));
    const graph = train!.flatMap((e) => e.values.map((v) => ({ step: e.step, v })))
      .filter(({ v }) => v.pluginName === "graph_keras_model");
    assert.equal(graph.length, 1);
    assert.equal(graph[0]!.step, 0);
    assert.equal(graph[0]!.v.tag, "keras");
    assert.equal(graph[0]!.v.pluginContent, "1");
    assert.equal(JSON.parse(graph[0]!.v.tensor!.stringVal[0]!).class_name, "Sequential");
    await assert.rejects(Deno.stat(join(logDir, "validation")), Deno.errors.NotFound);

    const noGraph = join(logDir, "no-graph");
    await fit(new TensorBoard({ logDir: noGraph, writeGraph: false }), new FakeModel(), 1, 1, false);
    const [events] = await runEvents(join(noGraph, "train"));
    assert.ok(events!.every((e) => e.values.every((v) => v.pluginName !== "graph_keras_model")));
  });
});

Deno.test("TensorBoard writes weight histograms every histogramFreq epochs, counts summing to sizes", async () => {
  await withTempDir(async (logDir) => {
    await fit(new TensorBoard({ logDir, histogramFreq: 2 }), new FakeModel(), 3, 1);
    const [train] = await runEvents(join(logDir, "train"));
    const hists = train!.flatMap((e) =>
      e.values.filter((v) => v.pluginName === "histograms").map((v) => ({ e, v }))
    );
    assert.deepEqual(hists.map(({ e, v }) => [v.tag, e.step]), [
      ["dense/kernel/histogram", 0],
      ["dense/bias/histogram", 0],
      ["dense/kernel/histogram", 2],
      ["dense/bias/histogram", 2],
    ]);
    const kernel = histogramRowsOf(hists[0]!.v.tensor!);
    assert.equal(kernel.length, 30);
    assert.equal(kernel.reduce((s, r) => s + r[2], 0), 12);
    assert.deepEqual([kernel[0]![0], kernel[29]![1]], [-1, 1.75]);
    assert.deepEqual(histogramRowsOf(hists[1]!.v.tensor!), [[-0.5, 0.5, 3]]);
  });
});

Deno.test("TensorBoard writes batch_ scalars every updateFreq global batches", async () => {
  await withTempDir(async (logDir) => {
    await fit(new TensorBoard({ logDir: join(logDir, "n2"), updateFreq: 2 }), new FakeModel(), 2, 3, false);
    const [every2] = await runEvents(join(logDir, "n2", "train"));
    assert.deepEqual(scalars(every2!).get("batch_loss")?.map(([s]) => s), [2, 4, 6]);
    assert.deepEqual(scalars(every2!).get("batch_loss")?.[0], [2, Math.fround(1 / 3)]);

    await fit(
      new TensorBoard({ logDir: join(logDir, "b"), updateFreq: "batch" }),
      new FakeModel(),
      2,
      3,
      false,
    );
    const [everyBatch] = await runEvents(join(logDir, "b", "train"));
    assert.deepEqual(scalars(everyBatch!).get("batch_accuracy")?.map(([s]) => s), [1, 2, 3, 4, 5, 6]);

    await fit(new TensorBoard({ logDir: join(logDir, "e") }), new FakeModel(), 2, 3, false);
    const [epochOnly] = await runEvents(join(logDir, "e", "train"));
    assert.ok(![...scalars(epochOnly!).keys()].some((k) => k.startsWith("batch_")));
  });
});

Deno.test("TensorBoard reused across two fits writes new files and restarts the global batch", async () => {
  await withTempDir(async (logDir) => {
    const cb = new TensorBoard({ logDir, updateFreq: "batch" });
    await fit(cb, new FakeModel(), 1, 2, false);
    await fit(cb, new FakeModel(), 1, 2, false);
    const runs = await runEvents(join(logDir, "train"));
    assert.equal(runs.length, 2);
    for (const events of runs) assert.deepEqual(scalars(events).get("batch_loss")?.map(([s]) => s), [1, 2]);
  });
});

Deno.test("TensorBoard resumed from a backup's state goes on counting global batches", async () => {
  await withTempDir(async (logDir) => {
    const first = new TensorBoard({ logDir, updateFreq: "batch" });
    await fit(first, new FakeModel(), 1, 3, false);
    const state = structuredClone(first.getState());
    assert.deepEqual(state, { globalTrainBatch: 3 });
    // A new process: a fresh callback restored after onTrainBegin, as BackupAndRestore does.
    const resumed = new TensorBoard({ logDir, updateFreq: "batch" });
    const model = new FakeModel();
    resumed.setModel(model);
    await resumed.onTrainBegin();
    resumed.setState(state);
    for (let batch = 3; batch < 5; batch++) {
      await resumed.onBatchBegin(batch);
      await resumed.onBatchEnd(batch, { loss: 0.5 });
    }
    await resumed.onTrainEnd();
    const steps = (await runEvents(join(logDir, "train")))
      .flatMap((events) => scalars(events).get("batch_loss")?.map(([s]) => s) ?? []).sort();
    assert.deepEqual(steps, [1, 2, 3, 4, 5]);
    assert.throws(
      () => resumed.setState({ globalTrainBatch: -1 }),
      /global batch count must be a non-negative integer: current value is -1; delete the backup/,
    );
  });
});

Deno.test("TensorBoard rejects bad options and histograms without named weights", async () => {
  assert.throws(
    () => new TensorBoard({ histogramFreq: -1 }),
    /histogramFreq must be an integer >= 0: current value is -1/,
  );
  assert.throws(() => new TensorBoard({ updateFreq: 0 }), /updateFreq must be .* current value is 0/);
  assert.throws(() => new TensorBoard({ updateFreq: "step" as "epoch" }), /current value is "step"/);
  assert.throws(() => new TensorBoard({ logDir: "" }), TypeError);

  const cb = new TensorBoard({ logDir: "unused", histogramFreq: 1 });
  const plain: CallbackModel = {
    stopTraining: false,
    optimizer: { learningRate: 0.1, iterations: 0 },
    getWeights: () => [],
    setWeights: () => {},
    save: () => Promise.resolve(),
    saveWeights: () => Promise.resolve(),
  };
  cb.setModel(plain);
  await assert.rejects(
    async () => await cb.onTrainBegin(),
    /no namedWeights\(\) method: current histogramFreq is 1/,
  );
});
