/**
 * Exact resume through the CLI: a job stopped by SIGTERM, resumed, killed with SIGKILL mid-epoch and
 * resumed again ends with the same weights, bit for bit, as the same job run without interruption.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readBackup, type TrainingPosition } from "../shared/callbacks/mod.ts";
import { checkpointPaths, fashionMnistModel } from "../coordinator/main.ts";

const ARGS = ["--limit-train", "640", "--epochs", "3", "--batch-size", "16", "--verbose", "2"];
const STEPS_PER_EPOCH = 34; // 544 training samples (validationSplit 0.15) in batches of 16

function job(dir: string, extra: string[] = []): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "coordinator/main.ts", ...ARGS, "--checkpoint-dir", dir, ...extra],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Collects a child's output as text while it runs. */
function collect(child: Deno.ChildProcess): { text: () => string; done: Promise<void> } {
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  return { text: () => text, done: Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {}) };
}

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  opts: { seconds?: number; everyMs?: number } = {},
): Promise<void> {
  const seconds = opts.seconds ?? 120;
  const deadline = Date.now() + seconds * 1000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${seconds}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 25));
  }
}

async function finalWeights(dir: string): Promise<Float32Array[]> {
  const model = fashionMnistModel(42);
  await model.loadWeights(checkpointPaths(dir).final);
  return model.getWeights();
}

async function backupPosition(dir: string): Promise<TrainingPosition | null> {
  return (await readBackup(checkpointPaths(dir).backup))?.position ?? null;
}

/**
 * Waits for a backup that `wanted` accepts and returns its position with the job stopped (SIGSTOP).
 * Each new backup file stops the job while the test reads it, so a later backup a few steps on cannot
 * replace the wanted one unseen, however fast the steps run. Fails at once if the job ends first.
 */
async function stopAtBackup(
  child: Deno.ChildProcess,
  dir: string,
  output: () => string,
  wanted: (p: TrainingPosition) => boolean,
): Promise<TrainingPosition> {
  let exited = false;
  void child.status.then(() => exited = true);
  const latest = join(checkpointPaths(dir).backup, "latest.backup");
  let found: TrainingPosition | null = null;
  let seen = "";
  await until("a backup", async () => {
    if (exited) throw new Error(`The job ended before the awaited backup:\n${output()}`);
    const stat = await Deno.stat(latest).catch(() => null);
    const id = stat ? `${stat.ino}:${stat.mtime?.getTime()}` : "";
    if (id === "" || id === seen) return false;
    seen = id;
    child.kill("SIGSTOP");
    const p = await backupPosition(dir).catch(() => null);
    if (p && wanted(p)) found = p;
    else child.kill("SIGCONT");
    return found !== null;
  }, { everyMs: 2 });
  return found!;
}

Deno.test("a job stopped by SIGTERM and killed by SIGKILL resumes to the uninterrupted job's weights", async () => {
  const root = await Deno.makeTempDir();
  const whole = join(root, "whole"), broken = join(root, "broken");

  const reference = job(whole, ["--summary", join(root, "whole.json")]);
  const referenceOut = collect(reference);
  assert.equal((await reference.status).code, 0, referenceOut.text());
  await referenceOut.done;

  // SIGTERM right after the first mid-epoch backup (step 50 of 102): the job stops at a step boundary,
  // writes the backup, exits 143. The point is found by steps, not by wall time: steps on a quiet
  // machine are fast enough to finish two epochs in a fixed delay.
  const first = job(broken);
  const firstOut = collect(first);
  await stopAtBackup(first, broken, firstOut.text, (p) => p.runSteps === 50);
  first.kill("SIGTERM");
  first.kill("SIGCONT");
  assert.equal((await first.status).code, 143, firstOut.text());
  await firstOut.done;
  assert.match(firstOut.text(), /SIGTERM received/);
  assert.match(firstOut.text(), /Training interrupted \(SIGTERM\) before batch \d+ of epoch \d.*--resume/);
  const stopped = await backupPosition(broken);
  assert.ok(stopped, "the SIGTERM backup exists");
  assert.equal(
    (await Array.fromAsync(Deno.readDir(checkpointPaths(broken).backup))).length,
    1,
    "no temp file",
  );

  // Resume, then SIGKILL right after a mid-epoch backup (every 50 steps) that this process wrote.
  const second = job(broken, ["--resume"]);
  const secondOut = collect(second);
  const killedAt = await stopAtBackup(
    second,
    broken,
    secondOut.text,
    (p) => p.runSteps > stopped.runSteps && p.batch > 0 && p.batch < STEPS_PER_EPOCH,
  );
  second.kill("SIGKILL");
  await second.status;
  await secondOut.done;
  assert.match(secondOut.text(), /Resuming from the backup in .*backup: epoch \d, batch \d+ done/);
  assert.equal(killedAt.runSteps % 50, 0);

  const third = job(broken, ["--resume", "--summary", join(root, "broken.json")]);
  const thirdOut = collect(third);
  assert.equal((await third.status).code, 0, thirdOut.text());
  await thirdOut.done;

  const [want, got] = [await finalWeights(whole), await finalWeights(broken)];
  assert.equal(got.length, want.length);
  want.forEach((w, i) => assert.deepEqual(got[i], w, `weight ${i} differs after resume`));
  const ref = JSON.parse(await Deno.readTextFile(join(root, "whole.json")));
  const res = JSON.parse(await Deno.readTextFile(join(root, "broken.json")));
  assert.deepEqual(res.history, ref.history, "History restored epoch by epoch");
  assert.equal(res.run_samples_processed, ref.samples_processed);
  assert.deepEqual(res.resumed_from, {
    epoch: killedAt.epoch,
    batch: killedAt.batch,
    samples_processed: killedAt.runSamples,
  });
  assert.equal(res.samples_processed, ref.samples_processed - killedAt.runSamples);
  await assert.rejects(
    Deno.stat(join(checkpointPaths(broken).backup, "latest.backup")),
    Deno.errors.NotFound,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("--resume without a backup fails naming the directory and the fix", async () => {
  const dir = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "coordinator/main.ts", ...ARGS, "--checkpoint-dir", dir, "--resume"],
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, err);
  assert.ok(err.includes(`no backup in ${join(dir, "backup")}`), err);
  assert.match(err, /without --resume/);
  await Deno.remove(dir, { recursive: true });
});
