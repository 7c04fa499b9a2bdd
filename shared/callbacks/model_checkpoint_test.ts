import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelCheckpoint } from "./model_checkpoint.ts";
import { FakeModel, fit, params } from "./testing_fakes.ts";

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function savedWeights(path: string): Promise<{ kind: string; weights: number[][] }> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("ModelCheckpoint fills {epoch:02d}-{val_loss:.2f} templates and creates parent directories", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const printed: string[] = [];
    const path = join(dir, "a", "b", "{epoch:02d}-{val_loss:.2f}.keras");
    const cb = new ModelCheckpoint(path, { verbose: 1, print: (m) => printed.push(m) });
    const model = new FakeModel();
    await fit(cb, model, [{ loss: 1, val_loss: 0.5 }, { loss: 1, val_loss: 0.456 }, {
      loss: 1,
      val_loss: 0.125,
    }]);
    // Python rounds half to even on the exact value: f"{0.125:.2f}" == "0.12".
    assert.deepEqual(await files(join(dir, "a", "b")), ["01-0.50.keras", "02-0.46.keras", "03-0.12.keras"]);
    assert.deepEqual(await savedWeights(join(dir, "a", "b", "02-0.46.keras")), {
      kind: "model",
      weights: [[1, 1, 1], [1]],
    });
    assert.equal(printed[0], `\nEpoch 1: saving model to ${join(dir, "a", "b", "01-0.50.keras")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint saveBestOnly in min mode keeps the lowest val_loss", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const printed: string[] = [];
    const path = join(dir, "best.keras");
    const cb = new ModelCheckpoint(path, { saveBestOnly: true, verbose: 1, print: (m) => printed.push(m) });
    const model = new FakeModel();
    await fit(cb, model, [{ val_loss: 0.5 }, { val_loss: 0.6 }, { val_loss: 0.4 }, { val_loss: 0.45 }]);
    assert.deepEqual(model.saved, [path, path]);
    assert.deepEqual((await savedWeights(path)).weights, [[2, 2, 2], [2]]);
    assert.deepEqual(printed, [
      `\nEpoch 1: val_loss improved from None to 0.50000, saving model to ${path}`,
      "\nEpoch 2: val_loss did not improve from 0.50000",
      `\nEpoch 3: val_loss improved from 0.50000 to 0.40000, saving model to ${path}`,
      "\nEpoch 4: val_loss did not improve from 0.40000",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint takes one options object with the filepath, as Keras's keyword arguments", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const filepath = join(dir, "best.keras");
    const cb = new ModelCheckpoint({ filepath, monitor: "val_loss", saveBestOnly: true, print: () => {} });
    assert.equal(cb.filepath, filepath);
    assert.equal(cb.saveBestOnly, true);
    assert.equal(cb.monitor, "val_loss");
    const model = new FakeModel();
    await fit(cb, model, [{ val_loss: 0.5 }, { val_loss: 0.6 }, { val_loss: 0.4 }]);
    assert.deepEqual(model.saved, [filepath, filepath]);
    assert.deepEqual(await files(dir), ["best.keras"]);
    // The same checks as the positional form, and no second options argument.
    assert.throws(
      () => new ModelCheckpoint({ filepath: "m.keras", saveWeightsOnly: true }),
      /must end in `.weights.h5`/,
    );
    assert.throws(
      () => new ModelCheckpoint({} as { filepath: string }),
      /ModelCheckpoint needs a filepath: received undefined/,
    );
    assert.throws(
      () => new (ModelCheckpoint as new (a: unknown, b: unknown) => unknown)({ filepath: "m.keras" }, {}),
      /either \(filepath, options\) or one options object/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint saveBestOnly in max mode keeps the highest accuracy, auto and explicit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const logs = [{ val_accuracy: 0.5 }, { val_accuracy: 0.7 }, { val_accuracy: 0.6 }];
    const auto = new ModelCheckpoint(join(dir, "auto.keras"), {
      monitor: "val_accuracy",
      saveBestOnly: true,
    });
    const model = new FakeModel();
    await fit(auto, model, logs);
    assert.equal(model.saved.length, 2);
    assert.deepEqual((await savedWeights(join(dir, "auto.keras"))).weights, [[1, 1, 1], [1]]);
    const explicit = new ModelCheckpoint(join(dir, "max.keras"), {
      monitor: "val_score",
      mode: "max",
      saveBestOnly: true,
    });
    const other = new FakeModel();
    await fit(explicit, other, logs.map((l) => ({ val_score: l.val_accuracy })));
    assert.equal(explicit.best, 0.7);
    assert.equal(other.saved.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint respects initialValueThreshold and keeps its best across fit calls", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "m.keras");
    const cb = new ModelCheckpoint(path, { saveBestOnly: true, initialValueThreshold: 0.4 });
    const model = new FakeModel();
    await fit(cb, model, [{ val_loss: 0.5 }, { val_loss: 0.3 }]);
    assert.deepEqual(model.saved, [path]);
    await fit(cb, model, [{ val_loss: 0.35 }]);
    assert.deepEqual(model.saved, [path]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint saveWeightsOnly writes .weights.h5 through saveWeights", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cb = new ModelCheckpoint(join(dir, "w-{epoch}.weights.h5"), { saveWeightsOnly: true });
    await fit(cb, new FakeModel(), [{ val_loss: 1 }, { val_loss: 2 }]);
    assert.deepEqual(await files(dir), ["w-1.weights.h5", "w-2.weights.h5"]);
    assert.equal((await savedWeights(join(dir, "w-2.weights.h5"))).kind, "weights");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint with an integer saveFreq saves every N batches with 1-based {batch}", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cb = new ModelCheckpoint(join(dir, "{epoch}-{batch}.keras"), { saveFreq: 2 });
    const model = new FakeModel();
    cb.setModel(model);
    cb.setParams(params(2, 3));
    cb.onTrainBegin();
    for (let epoch = 0; epoch < 2; epoch++) {
      cb.onEpochBegin(epoch);
      for (let batch = 0; batch < 3; batch++) await cb.onBatchEnd(batch, { loss: 1 });
      await cb.onEpochEnd(epoch, { loss: 1 });
    }
    assert.deepEqual(await files(dir), ["1-2.keras", "2-1.keras", "2-3.keras"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint names the available keys when a template key is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cb = new ModelCheckpoint(join(dir, "{epoch:02d}-{val_acc:.2f}.keras"));
    await assert.rejects(() => fit(cb, new FakeModel(), [{ loss: 1, val_loss: 2 }]), {
      name: "RangeError",
      message:
        `Failed to format this callback filepath: "${join(dir, "{epoch:02d}-{val_acc:.2f}.keras")}". ` +
        "Reason: 'val_acc' is not available. Available keys are: loss,val_loss,epoch. Use one of them in the filepath",
    });
    const batch = new ModelCheckpoint(join(dir, "{batch}.keras"));
    await assert.rejects(() => fit(batch, new FakeModel(), [{ loss: 1 }]), /'batch' is not available/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint warns and saves when the monitored value is missing with saveBestOnly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const warnings: string[] = [];
    const cb = new ModelCheckpoint(join(dir, "m.keras"), {
      saveBestOnly: true,
      warn: (m) => warnings.push(m),
    });
    const model = new FakeModel();
    await fit(cb, model, [{ loss: 1 }]);
    assert.equal(model.saved.length, 1);
    assert.deepEqual(warnings, [
      "Can save best model only with val_loss available. Available metrics are: loss",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint refuses a filepath that is an existing directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "x.keras"));
    const cb = new ModelCheckpoint(join(dir, "x.keras"));
    await assert.rejects(() => fit(cb, new FakeModel(), [{ val_loss: 1 }]), /non-directory filepath/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModelCheckpoint rejects bad options in the constructor", () => {
  assert.throws(() => new ModelCheckpoint("m.weights.h5"), {
    name: "RangeError",
    message:
      "The filepath provided must end in `.keras` (Keras model format). Received: filepath=m.weights.h5. " +
      'Rename it, e.g. "ckpt/{epoch:02d}.keras", or pass saveWeightsOnly: true with a `.weights.h5` path',
  });
  assert.throws(
    () => new ModelCheckpoint("m.keras", { saveWeightsOnly: true }),
    /must end in `.weights.h5` \(Keras weights format\). Received: filepath=m.keras/,
  );
  assert.throws(() => new ModelCheckpoint("m.h5", { saveWeightsOnly: true }), RangeError);
  assert.throws(() => new ModelCheckpoint("m.keras", { saveFreq: 0 }), /Unrecognized saveFreq: 0/);
  assert.throws(() => new ModelCheckpoint("m.keras", { saveFreq: "batch" as "epoch" }), /saveFreq: batch/);
  assert.throws(() => new ModelCheckpoint("m-{epoch.keras"), /is never closed/);
  assert.throws(() => new ModelCheckpoint("m-{epoch:x}.keras"), /format spec ":x"/);
  assert.throws(() => new ModelCheckpoint("m.keras", { verbose: -1 }), /verbose=-1/);
});
