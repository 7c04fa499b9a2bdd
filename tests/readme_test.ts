/**
 * The README as a new user plays it: from a folder outside the repository, its library example (with
 * fewer rows and one epoch) importing Shoal as "Use Shoal in your project" shows, and its CLI command
 * with relative paths. Also checks that "What Shoal supports" lists what the code supports.
 */
import assert from "node:assert/strict";
import { callbacks, datasets, optimizers, regularizers } from "../mod.ts";
import { ACTIVATION_NAMES, LOSS_NAMES, Optimizer, SUPPORTED_LAYERS } from "../shared/model/mod.ts";
import { METRIC_NAMES } from "../shared/model/metrics.ts";
import { INITIALIZER_NAMES } from "../shared/model/initializers.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { userEnv } from "./support/user_env.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const README = await Deno.readTextFile(`${REPO}/README.md`);
/** Where the README tells users to keep Shoal. */
const PLACEHOLDER = "/opt/shoal";

/** The README text from heading `title` to the next heading of the same level. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has no "## ${title}" section`);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The first fenced block of `lang` in `text`. */
function codeBlock(text: string, lang: string): string {
  const m = text.match(new RegExp("```" + lang + "\\n([\\s\\S]*?)\\n```"));
  assert.ok(m, `no \`\`\`${lang} block`);
  return m[1]!;
}

/** Runs `deno ARGS` in `dir` as a user would, with this environment minus INIT_CWD. */
function inFolder(dir: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    clearEnv: true,
    env: userEnv(),
    stdout: "piped",
    stderr: "piped",
  });
}

/** `text` with `from` replaced by `to`, which must occur exactly once. */
function replaceOnce(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length - 1, 1, `expected "${from}" once in the README example`);
  return text.replace(from, to);
}

Deno.test("README lists every layer, loss, metric, optimizer, schedule and callback the code supports", () => {
  const supported = section("What Shoal supports");
  const names = new Set([...supported.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
  const classesOf = (module: object, base: abstract new (...args: never[]) => unknown) =>
    Object.entries(module)
      .filter(([, v]) => typeof v === "function" && (v === base || v.prototype instanceof base))
      .map(([k]) => k);
  const expected: Record<string, readonly string[]> = {
    layers: SUPPORTED_LAYERS,
    activations: ACTIVATION_NAMES,
    initializers: INITIALIZER_NAMES,
    regularizers: Object.keys(regularizers).filter((k) => k !== "Regularizer"),
    losses: LOSS_NAMES,
    metrics: METRIC_NAMES,
    optimizers: classesOf(optimizers, Optimizer).filter((k) => k !== "Optimizer"),
    schedules: Object.keys(optimizers.schedules),
    // The list runner and the monitor base class are internals, not callbacks to pass to fit.
    callbacks: classesOf(callbacks, callbacks.Callback).filter((k) =>
      k !== "CallbackList" && k !== "MonitorCallback"
    ),
    datasets: Object.keys(datasets),
  };
  for (const [kind, list] of Object.entries(expected)) {
    assert.ok(list.length > 0, `no ${kind} found in the code`);
    const missing = list.filter((name) => !names.has(name));
    assert.deepEqual(missing, [], `README "What Shoal supports" lacks these ${kind}`);
  }
  // The Keras-to-Shoal table spells its rows out instead of ending a list in "…".
  assert.doesNotMatch(section("Keras to Shoal"), /, …\s*\|/);
});

Deno.test("README's library example runs from a folder outside the repository", async () => {
  const example = codeBlock(section("Usage as a library"), "ts");
  // As "Use Shoal in your project" says: import mod.ts by file URL, here the repository's.
  let script = replaceOnce(
    example,
    `"file://${PLACEHOLDER}/mod.ts"`,
    JSON.stringify(`file://${REPO}/mod.ts`),
  );
  // Shortened: 600 training rows, 200 test rows, one epoch.
  script = replaceOnce(script, "xTrain.reshape(", "xTrain.slice(0, 600).reshape(");
  script = replaceOnce(script, "model.fit(x, yTrain,", "model.fit(x, yTrain.slice(0, 600),");
  script = replaceOnce(script, "xTest.reshape(", "xTest.slice(0, 200).reshape(");
  script = replaceOnce(script, "model.evaluate(xt, yTest,", "model.evaluate(xt, yTest.slice(0, 200),");
  script = replaceOnce(script, "epochs: 50,", "epochs: 1,");
  script += "\nconsole.log(JSON.stringify({ testLoss, testAcc, probs: probs.shape, " +
    "epochs: history.history.loss.length }));\n";
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-readme-" }));
  try {
    assert.ok(!dir.startsWith(REPO), dir);
    await Deno.writeTextFile(`${dir}/train.ts`, script);
    const r = await inFolder(dir, ["run", "-A", "train.ts"]).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, `${out}\n${new TextDecoder().decode(r.stderr)}`);
    assert.match(out, /Model: "sequential/);
    assert.match(out, /Total params: 409,098/);
    const result = JSON.parse(out.trimEnd().split("\n").at(-1)!);
    assert.equal(result.epochs, 1);
    assert.deepEqual(result.probs, [5, 10]);
    assert.ok(result.testAcc >= 0 && result.testAcc <= 1, `test accuracy ${result.testAcc}`);
    assert.ok(Number.isFinite(result.testLoss), `test loss ${result.testLoss}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's CLI command writes its relative --summary into the user's folder", async () => {
  const usage = section("Use Shoal in your project");
  const line = usage.split("\n").find((l) =>
    l.startsWith(`deno task --config ${PLACEHOLDER}/deno.json train`)
  );
  assert.ok(line, "no `deno task --config /opt/shoal/deno.json train …` line");
  const args = line.trim().split(/\s+/).slice(1).map((a) => a.replace(PLACEHOLDER, REPO));
  const summary = args[args.indexOf("--summary") + 1]!;
  assert.ok(!summary.startsWith("/"), `the README's --summary ${summary} should be relative`);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-readme-" }));
  try {
    const r = await inFolder(dir, args).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, `${out}\n${new TextDecoder().decode(r.stderr)}`);
    const stem = summary.replace(/\.json$/, "");
    assert.ok(
      out.includes(`Summary written to ${dir}/${summary}, learning curves to ${dir}/${stem}_curves.png`),
      out,
    );
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${summary}`)).epochs_run, 1);
    await assert.rejects(Deno.stat(`${REPO}/${summary}`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's worker and coordinator train through a stock nats-server, from the user's folder", async () => {
  const usage = section("Use Shoal in your project");
  const block = codeBlock(usage.slice(usage.indexOf("stock `nats-server`")), "sh").split("\n");
  const url = "nats://127.0.0.1:4222";
  const command = (kind: string) => {
    const line = block.find((l) => l.startsWith(`deno task --config ${PLACEHOLDER}/deno.json ${kind}`));
    assert.ok(line, `no ${kind} line in the README's external-server example`);
    return line.replace(/ &$/, "").trim().split(/\s+/).slice(1).map((a) => a.replace(PLACEHOLDER, REPO));
  };
  await using server = await startNatsServer({ configText: "" });
  const withServer = (args: string[]) => args.map((a) => a.replace(url, server.url));
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-readme-" }));
  const worker = inFolder(dir, withServer(command("worker"))).spawn();
  const workerLog = new Response(worker.stderr).text();
  void new Response(worker.stdout).text();
  try {
    const r = await inFolder(dir, withServer(command("train"))).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, out);
    assert.match(out, /Test accuracy: 0\.\d+/);
    // The coordinator prints no routine line per worker; the worker says where its tensors went.
    assert.doesNotMatch(out, /connected to|joined job/);
  } finally {
    const stopped = performance.now();
    worker.kill("SIGTERM");
    const status = await worker.status;
    assert.ok(performance.now() - stopped < 5000, "the worker ended within 5 s of SIGTERM");
    assert.equal(status.code, 0);
    assert.match(await workerLog, /joined job \w+ \(data plane unix:/);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a distributed run prints no line per worker at the default verbosity", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "shoal-readme-" }));
  try {
    const r = await inFolder(dir, [
      "task",
      "--config",
      `${REPO}/deno.json`,
      "train",
      "--workers",
      "2",
      "--epochs",
      "1",
      "--limit-train",
      "600",
    ]).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, out);
    assert.doesNotMatch(out, /connected to|joined job|Worker w\d/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
