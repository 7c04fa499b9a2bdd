import assert from "node:assert/strict";
import { join } from "node:path";
import { BACKUP_FILE, BackupAndRestore, readBackup } from "./backup_and_restore.ts";
import { type BackupOptimizer, isRunBackup, type RunAccess, type TrainingPosition } from "./training_run.ts";
import type { Callback } from "./callback.ts";
import { EarlyStopping } from "./early_stopping.ts";
import { History } from "./history.ts";
import { ModelCheckpoint } from "./model_checkpoint.ts";
import { ReduceLROnPlateau } from "./reduce_lr_on_plateau.ts";
import { FakeModel, params } from "./testing_fakes.ts";

function optimizer(iterations: number, slots: Float32Array[], learningRate = 0.001): BackupOptimizer {
  return { iterations, slots, learningRate, schedule: null };
}

function callbacks(model: FakeModel): Callback[] {
  const list = [
    new EarlyStopping({ patience: 2, restoreBestWeights: true }),
    new ReduceLROnPlateau({ patience: 1 }),
    new ModelCheckpoint("/nonexistent/best.keras", { saveBestOnly: true }),
    new History(),
  ];
  for (const c of list) {
    c.setModel(model);
    c.setParams(params());
  }
  return list;
}

function run(
  opt: BackupOptimizer,
  cbs: Callback[],
  p = new Float32Array([1.5, -2.25, 3]),
  s = new Float32Array([0.125]),
) {
  return {
    params: p,
    state: s,
    optimizer: opt,
    callbacks: cbs,
    fit: { batchSize: 4, stepsPerEpoch: 3, samples: 10, seed: 42, shuffle: true },
  } satisfies RunAccess;
}

const position: TrainingPosition = {
  epoch: 2,
  batch: 1,
  stopTraining: false,
  seen: 4,
  lossSum: 0.1 + 0.2,
  regSum: 1 / 3,
  metricSums: [Math.PI, NaN],
  runSamples: 24,
  runSteps: 7,
};

Deno.test("BackupAndRestore restores weights, optimizer, position and callback states exactly", async () => {
  const dir = await Deno.makeTempDir();
  const model = new FakeModel();
  const source = callbacks(model);
  const [stop, plateau, checkpoint, history] = source as [
    EarlyStopping,
    ReduceLROnPlateau,
    ModelCheckpoint,
    History,
  ];
  stop.wait = 1;
  stop.best = 0.75;
  stop.bestEpoch = 1;
  stop.bestWeights = [new Float32Array([0.1, 0.2, 0.3]), new Float32Array([Math.fround(1e-7)])];
  plateau.wait = 1; // plateau.best stays Infinity, which JSON cannot hold
  checkpoint.best = 0.75;
  history.onEpochEnd(0, { loss: 1, val_loss: 0.75 });
  history.onEpochEnd(1, { loss: 0.5, val_loss: NaN });
  const backup = new BackupAndRestore({ backupDir: dir, saveFreq: 2 });
  const slots = [new Float32Array([1e-3, 2e-3, 3e-3]), new Float32Array([4, 5, 6])];
  await backup.backupRun(run(optimizer(7, slots, 0.001 * 0.5), source), position, "batch");
  assert.equal(backup.writes, 0, "iteration 7 is not a multiple of saveFreq 2");
  await backup.backupRun(run(optimizer(8, slots, 0.001 * 0.5), source), position, "batch");
  assert.equal(backup.writes, 1);

  const fresh = new FakeModel();
  const target = callbacks(fresh);
  for (const c of target) await c.onTrainBegin();
  const opt = optimizer(0, []);
  const into = run(opt, target, new Float32Array(3), new Float32Array(1));
  const restored = await new BackupAndRestore({ backupDir: dir }).restoreRun(into);
  assert.deepEqual(restored, position);
  assert.ok(Object.is(restored!.lossSum, 0.1 + 0.2), "float64 sums survive bit for bit");
  assert.deepEqual(into.params, new Float32Array([1.5, -2.25, 3]));
  assert.deepEqual(into.state, new Float32Array([0.125]));
  assert.equal(opt.iterations, 8);
  assert.equal(opt.learningRate, 0.001 * 0.5);
  assert.deepEqual(opt.slots, slots);
  const [stop2, plateau2, checkpoint2, history2] = target as [
    EarlyStopping,
    ReduceLROnPlateau,
    ModelCheckpoint,
    History,
  ];
  assert.deepEqual(stop2.getState(), stop.getState());
  assert.equal(plateau2.best, Infinity);
  assert.equal(plateau2.wait, 1);
  assert.equal(checkpoint2.best, 0.75);
  assert.deepEqual(history2.history, { loss: [1, 0.5], val_loss: [0.75, NaN] });
  assert.deepEqual(history2.epoch, [0, 1]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BackupAndRestore finds nothing to restore in an empty directory and deletes its backup at train end", async () => {
  const dir = await Deno.makeTempDir();
  const backup = new BackupAndRestore({ backupDir: join(dir, "nested") });
  assert.ok(isRunBackup(backup));
  assert.equal(await backup.restoreRun(run(optimizer(0, []), [])), null);
  await backup.backupRun(run(optimizer(3, []), []), position, "batch");
  assert.equal(backup.writes, 0, 'saveFreq "epoch" skips batches');
  await backup.backupRun(run(optimizer(3, []), []), position, "epoch");
  assert.ok((await Deno.stat(backup.backupPath)).isFile);
  await backup.onTrainEnd();
  await assert.rejects(Deno.stat(backup.backupPath), Deno.errors.NotFound);

  const keep = new BackupAndRestore({ backupDir: dir, deleteCheckpoint: false });
  await keep.backupRun(run(optimizer(3, []), []), position, "interrupt");
  await keep.onTrainEnd();
  assert.ok((await Deno.stat(keep.backupPath)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BackupAndRestore keeps the previous backup usable when a write dies half way", async () => {
  const dir = await Deno.makeTempDir();
  const backup = new BackupAndRestore({ backupDir: dir });
  await backup.backupRun(run(optimizer(5, []), []), position, "epoch");
  const good = await Deno.readFile(backup.backupPath);
  // A crash mid-write leaves only a partial temporary file beside the backup.
  await Deno.writeFile(join(dir, `${BACKUP_FILE}.tmp-99999`), good.subarray(0, good.length >> 1));
  assert.equal((await readBackup(dir))!.optimizer.iterations, 5);
  // A file damaged outside the protocol is refused with its path and the fix.
  await Deno.writeFile(backup.backupPath, good.subarray(0, good.length - 4));
  await assert.rejects(
    readBackup(dir),
    (e: Error) => e.message.includes(backup.backupPath) && /damaged/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BackupAndRestore refuses a backup of another fit or callback list", async () => {
  const dir = await Deno.makeTempDir();
  const backup = new BackupAndRestore({ backupDir: dir });
  await backup.backupRun(run(optimizer(5, []), [new History()]), position, "epoch");
  const other = run(optimizer(0, []), [new History()]);
  await assert.rejects(
    backup.restoreRun({ ...other, fit: { ...other.fit, batchSize: 8 } }),
    /batchSize=4, but this fit has batchSize=8.*delete/,
  );
  await assert.rejects(
    backup.restoreRun(run(optimizer(0, []), [])),
    /\[History#0\], but this fit has \[none\]/,
  );
  await assert.rejects(
    backup.restoreRun(run(optimizer(0, []), [new History()], new Float32Array(4))),
    /3 trainable .* this model has 4/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BackupAndRestore rejects bad options with the value and the fix", () => {
  assert.throws(() => new BackupAndRestore({ backupDir: "" }), TypeError);
  assert.throws(
    () => new BackupAndRestore({ backupDir: "d", saveFreq: 0 }),
    /saveFreq=0.*"epoch" or a positive integer/,
  );
  assert.throws(() => new BackupAndRestore({ backupDir: "d", saveFreq: 1.5 }), RangeError);
});
