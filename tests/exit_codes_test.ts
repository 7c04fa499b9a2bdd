/**
 * The exit codes of `deno task train` (coordinator/exit_codes.ts), each from a real process: what the
 * Kubernetes pod failure policy in deploy/k8s acts on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readBackup } from "../shared/callbacks/mod.ts";
import { startNatsServer } from "../shared/io/nats/server.ts";
import { checkpointPaths } from "../coordinator/main.ts";
import {
  EXIT_BAD_INPUT,
  EXIT_FAILURE,
  EXIT_NOT_ENOUGH_WORKERS,
  EXIT_SIGINT,
  EXIT_SIGTERM,
  exitCodeFor,
} from "../coordinator/exit_codes.ts";
import { NotEnoughWorkersError, StoppedWaitingError } from "../coordinator/distributed/pool.ts";
import { JobConfigError } from "../coordinator/job.ts";
import { DatasetError } from "../shared/io/dataset_error.ts";

const MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;

/** Starts the coordinator; its output is collected as it runs. */
function start(args: string[]): { child: Deno.ChildProcess; text: () => string; done: Promise<void> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  return {
    child,
    text: () => text,
    done: Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {}),
  };
}

async function until(what: string, check: () => boolean, text: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}:\n${text()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("exitCodeFor maps each outcome to its code", () => {
  assert.equal(exitCodeFor(new JobConfigError("bad")), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new RangeError("bad")), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new TypeError("bad")), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new DatasetError("x.gz", "bad")), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new Error("server lost")), EXIT_FAILURE);
  assert.equal(exitCodeFor(new StoppedWaitingError("stopped"), "SIGTERM"), EXIT_SIGTERM);
  assert.equal(exitCodeFor(new StoppedWaitingError("stopped"), "SIGINT"), EXIT_SIGINT);
  assert.equal(exitCodeFor(new NotEnoughWorkersError("too few", 0, 1, 0)), EXIT_NOT_ENOUGH_WORKERS);
  assert.deepEqual([EXIT_BAD_INPUT, EXIT_NOT_ENOUGH_WORKERS, EXIT_SIGTERM], [2, 75, 143]);
});

Deno.test("a bad config value exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "job.yaml"), "epochs: 0\n");
    const run = start(["--config", join(dir, "job.yaml")]);
    const status = await run.child.status;
    await run.done;
    assert.equal(status.code, 2, run.text());
    assert.match(run.text(), /epochs in .*job\.yaml must be ≥ 1: current value is 0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM during training writes the backup and exits 143", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = start([
      "--limit-train",
      "640",
      "--batch-size",
      "16",
      "--epochs",
      "200",
      "--patience",
      "200",
      "--verbose",
      "2",
      "--checkpoint-dir",
      dir,
    ]);
    await until("the first epoch", () => run.text().includes("Epoch 1/200"), run.text);
    run.child.kill("SIGTERM");
    const status = await run.child.status;
    await run.done;
    assert.equal(status.code, 143, run.text());
    assert.match(run.text(), /Training interrupted \(SIGTERM\)/);
    assert.ok(await readBackup(checkpointPaths(dir).backup), "the backup was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM while waiting for workers exits 143; too few workers exit 75", async () => {
  await using server = await startNatsServer();
  const waiting = start([
    "--nats",
    server.url,
    "--workers",
    "1",
    "--join-timeout",
    "600",
    "--limit-train",
    "64",
  ]);
  // The model summary prints just before the wait for workers; a signal before or during it stops the job.
  await until("the model summary", () => waiting.text().includes("Non-trainable params"), waiting.text);
  waiting.child.kill("SIGTERM");
  const stopped = await waiting.child.status;
  await waiting.done;
  assert.equal(stopped.code, 143, waiting.text());

  const alone = start(["--nats", server.url, "--workers", "1", "--join-timeout", "1", "--limit-train", "64"]);
  const status = await alone.child.status;
  await alone.done;
  assert.equal(status.code, 75, alone.text());
  assert.match(alone.text(), /--checkpoint-dir DIR/);
});
