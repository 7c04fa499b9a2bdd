/**
 * The CLI's callbacks on the Fashion-MNIST example (TensorBoard, ModelCheckpoint, ReduceLROnPlateau,
 * EarlyStopping), in-process and on 2 workers: the event files pass an independent reader with the
 * expected tags and steps, and the best checkpoint loads and predicts what the job's final model does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { models } from "../mod.ts";
import { checkpointPaths, fashionMnistModel } from "../coordinator/main.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { eventFilesIn, readEventFile, scalarOf } from "../shared/io/tensorboard/test_event_reader.ts";

const STEPS_PER_EPOCH = 14; // 850 training samples (validationSplit 0.15 of 1000) in batches of 64

async function tags(dir: string): Promise<Map<string, number[]>> {
  const files = await eventFilesIn(dir);
  assert.equal(files.length, 1, `one event file in ${dir}: ${files.join(", ")}`);
  const byTag = new Map<string, number[]>();
  for (const event of await readEventFile(files[0]!)) {
    for (const v of event.values) {
      if (v.tensor && v.dataClass === 1) assert.ok(Number.isFinite(scalarOf(v.tensor)), v.tag);
      byTag.set(v.tag, [...(byTag.get(v.tag) ?? []), event.step]);
    }
  }
  return byTag;
}

async function firstTestImages(n: number): Promise<{ data: Float32Array; shape: number[] }> {
  const ds = await loadDataset("fashion_mnist");
  const data = new Float32Array(n * 784);
  for (let i = 0; i < data.length; i++) data[i] = ds.xTest.data[i]! / 255;
  return { data, shape: [n, 784] };
}

async function runCase(workers: number): Promise<void> {
  const root = await Deno.makeTempDir();
  const logdir = join(root, "logs"), ckpt = join(root, "ckpt"), summary = join(root, "summary.json");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "coordinator/main.ts", "--limit-train", "1000", "--epochs", "2"],
      ...["--workers", String(workers), "--logdir", logdir, "--checkpoint-dir", ckpt, "--summary", summary],
    ],
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const report = JSON.parse(await Deno.readTextFile(summary));
  assert.equal(report.workers, workers);
  assert.equal(report.epochs_run, 2);

  const train = await tags(join(logdir, "train"));
  for (const tag of ["epoch_loss", "epoch_accuracy", "epoch_learning_rate"]) {
    assert.deepEqual(train.get(tag), [0, 1], `train ${tag}`);
  }
  assert.deepEqual(train.get("dense/kernel/histogram"), [0, 1]);
  assert.deepEqual(train.get("batch_normalization/moving_mean/histogram"), [0, 1]);
  const validation = await tags(join(logdir, "validation"));
  assert.deepEqual(validation.get("epoch_loss"), [0, 1]);
  assert.deepEqual(validation.get("epoch_accuracy"), [0, 1]);
  assert.deepEqual(validation.get("evaluation_loss_vs_iterations"), [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]);

  // EarlyStopping restores the best val_loss epoch's weights, the ones ModelCheckpoint kept.
  const paths = checkpointPaths(ckpt);
  const best = await models.loadModel(paths.best);
  const final = fashionMnistModel(42);
  await final.loadWeights(paths.final);
  const x = await firstTestImages(64);
  const [want, got] = [await final.predict(x), await best.predict(x)];
  assert.deepEqual(got.shape, [64, 10]);
  assert.deepEqual(
    await got.data(),
    await want.data(),
    `${workers} workers: best.keras predicts differently`,
  );
  const valLoss: number[] = report.history.val_loss;
  const bestEpoch = valLoss.indexOf(Math.min(...valLoss));
  assert.equal(best.optimizer.iterations, (bestEpoch + 1) * STEPS_PER_EPOCH, "checkpoint of the best epoch");
  await assert.rejects(Deno.stat(join(paths.backup, "latest.backup")), Deno.errors.NotFound);
  await Deno.remove(root, { recursive: true });
}

Deno.test("callbacks of the CLI run in-process", () => runCase(0));

Deno.test("callbacks of the CLI run on 2 workers", () => runCase(2));
