/** `deno task train` as a user runs it: real processes, real Fashion-MNIST files, real config files. */
import assert from "node:assert/strict";
import { userEnv } from "./support/user_env.ts";

const MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;
const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

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
      ["epochs 0", ["--epochs", "0"], /--epochs must be ≥ 1: current value is 0/],
      ["epochs -3", ["--epochs", "-3"], /--epochs must be ≥ 1: current value is -3/],
      ["epochs 1.5", ["--epochs", "1.5"], /--epochs must be a whole number: current value is 1.5/],
      ["batch size 0", ["--batch-size", "0"], /--batch-size must be ≥ 1: current value is 0/],
      [
        "validation split 1.5",
        ["--validation-split", "1.5"],
        /--validation-split must be > 0 and < 1: .* 1.5/,
      ],
      ["not a number", ["--epochs", "ten"], /--epochs must be a number: current value is "ten"/],
      ["unknown flag", ["--epoch", "3"], /Unknown option '--epoch'\. Did you mean --epochs\?/],
      ["misspelt flag", ["--batchsize", "3"], /Did you mean --batch-size\?/],
      [
        "verbose 5",
        ["--verbose", "5"],
        /--verbose must be 0 \(silent\), 1 \(progress bar\) or 2 .*: current value is 5/,
      ],
      [
        "unknown backend",
        ["--backend", "tpu"],
        /--backend must be one of auto, .*wasm-blas.*: current value is "tpu"/,
      ],
      [
        "unknown allreduce",
        ["--allreduce", "tree"],
        /--allreduce must be star, ring or auto: current value is "tree"/,
      ],
      [
        "ring through NATS",
        ["--allreduce", "ring", "--transport", "nats"],
        /--allreduce ring needs the data plane between workers: --transport is nats\. Use --allreduce star/,
      ],
      [
        "unknown example",
        ["--example", "mnist"],
        /--example must be one of fashion-mnist: current value is "mnist"/,
      ],
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
      assert.match(r.err, /epochs in .*job\.yaml must be a number: current value is "ten"/);
      assert.match(r.err, /learning_rate in .*job\.yaml is not an option: .* Did you mean learningRate\?/);
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

Deno.test("deno task train takes relative paths from the folder it runs in and prints them absolute", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-cli-" }));
  try {
    await Deno.writeTextFile(`${dir}/job.yaml`, "epochs: 1\nbatchSize: 64\nexample: fashion_mnist\n");
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--config",
        DENO_JSON,
        "train",
        "--config",
        "job.yaml",
        "--limit-train",
        "300",
        "--summary",
        "s.json",
        "--logdir",
        "logs",
        "--checkpoint-dir",
        "ckpt",
        "--verbose",
        "0",
      ],
      cwd: dir,
      clearEnv: true,
      env: userEnv(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.ok(out.includes(`Summary written to ${dir}/s.json, learning curves to ${dir}/s_curves.png`), out);
    assert.ok(out.includes(`Final weights written to ${dir}/ckpt/final.weights.h5`), out);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/s.json`)).epochs_run, 1);
    assert.ok((await Deno.stat(`${dir}/logs/train`)).isDirectory);
    assert.ok((await Deno.stat(`${dir}/ckpt/best.keras`)).isFile);
    await assert.rejects(Deno.stat(`${REPO}/s.json`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("coordinator/main.ts takes relative paths from INIT_CWD when it is set", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-cli-" }));
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--summary",
        "out/s.json",
        "--verbose",
        "0",
      ],
      cwd: REPO,
      env: { INIT_CWD: dir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.match(out, new RegExp(`Summary written to ${dir}/out/s\\.json`));
    assert.ok((await Deno.stat(`${dir}/out/s.json`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
