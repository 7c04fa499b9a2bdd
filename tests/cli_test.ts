/** `deno task train` as a user runs it: real processes, real Fashion-MNIST files, real config files. */
import assert from "node:assert/strict";

const MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;

async function train(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("train --help prints the usage and exits 0", async () => {
  const r = await train(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.out, /Usage: deno task train/);
  assert.match(r.out, /--limit-train N/);
});

Deno.test("bad flags and config files exit 2 naming the field and the expectation", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, string[], RegExp][] = [
      ["epochs 0", ["--epochs", "0"], /epochs: .*(>0|positive|too small)/i],
      ["batch size 0", ["--batch-size", "0"], /batchSize: .*(>0|positive|too small)/i],
      ["validation split 1.5", ["--validation-split", "1.5"], /validationSplit: .*(<1|too big)/i],
      ["not a number", ["--epochs", "ten"], /--epochs: expected a number, received "ten"/],
      ["unknown flag", ["--epoch", "3"], /Unknown option '--epoch'/],
      ["unknown backend", ["--backend", "tpu"], /backend: .*(wasm-blas|expected one of)/i],
    ];
    for (const [name, args, pattern] of cases) {
      await t.step(name, async () => {
        const r = await train(args);
        assert.equal(r.code, 2, r.err);
        assert.match(r.err, pattern);
      });
    }
    await t.step("config file with a wrong type and an unknown key", async () => {
      const path = `${dir}/job.yaml`;
      await Deno.writeTextFile(path, "epochs: ten\nbatchSize: 64\nlearning_rate: 0.1\n");
      const r = await train(["--config", path]);
      assert.equal(r.code, 2);
      assert.match(r.err, /job\.yaml: epochs: .*number/i);
      assert.match(r.err, /learning_rate/);
    });
    await t.step("config file that is not a mapping", async () => {
      const path = `${dir}/list.yaml`;
      await Deno.writeTextFile(path, "- 1\n- 2\n");
      const r = await train(["--config", path]);
      assert.equal(r.code, 2);
      assert.match(r.err, /must hold a mapping/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a smoke run writes the summary with Keras history keys and sample accounting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/job.json`;
    await Deno.writeTextFile(config, JSON.stringify({ epochs: 2, batchSize: 64 }));
    const summaryPath = `${dir}/summary.json`;
    const r = await train([
      "--config",
      config,
      "--limit-train",
      "600",
      "--summary",
      summaryPath,
      "--seed",
      "7",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Test accuracy: 0\.\d{4}/);
    const png = await Deno.readFile(`${dir}/summary_curves.png`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const s = JSON.parse(await Deno.readTextFile(summaryPath));
    assert.equal(s.epochs_run, 2);
    assert.deepEqual(Object.keys(s.history).sort(), [
      "accuracy",
      "learning_rate",
      "loss",
      "val_accuracy",
      "val_loss",
    ]);
    // 600 samples, the last 15% held out for validation: 510 trained per epoch.
    assert.equal(s.samples_processed, 2 * 510);
    assert.equal(s.params, 570506);
    assert.equal(s.seed, 7);
    assert.equal(s.workers, 0);
    assert.ok(s.test.accuracy > 0.3, `test accuracy ${s.test.accuracy}`);
    for (const k of ["wall_s", "train_samples_per_s", "backend"]) assert.ok(k in s, k);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
