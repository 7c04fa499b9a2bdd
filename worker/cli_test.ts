import assert from "node:assert/strict";
import { startNatsServer } from "../shared/io/nats/mod.ts";
import { parseWorkerArgs } from "./cli.ts";

Deno.test("parseWorkerArgs reads every option", () => {
  const opts = parseWorkerArgs([
    "--nats",
    "nats://127.0.0.1:4222",
    "--name",
    "w3",
    "--backend",
    "wasm",
    "--gpu",
    "1",
    "--job",
    "abc",
    "--fault",
    "nan-once",
  ]);
  assert.deepEqual(opts, {
    nats: "nats://127.0.0.1:4222",
    name: "w3",
    backend: "wasm",
    gpu: 1,
    job: "abc",
    fault: "nan-once",
  });
});

Deno.test("parseWorkerArgs names the bad argument", () => {
  assert.throws(() => parseWorkerArgs([]), /--nats is invalid/);
  assert.throws(() => parseWorkerArgs(["--nats", "nats://x", "--name", "a.b"]), /--name is invalid/);
  assert.throws(() => parseWorkerArgs(["--nats", "nats://x", "--gpu", "one"]), /--gpu is invalid/);
  assert.throws(() => parseWorkerArgs(["--nats", "nats://x", "--backend", "torch"]), /--backend is invalid/);
  assert.equal(parseWorkerArgs(["--help"]), undefined);
  assert.match(parseWorkerArgs(["--nats", "nats://x"])!.name, /-\d+$/);
});

Deno.test("the worker process exits with code 0 on SIGTERM", async () => {
  await using server = await startNatsServer();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, "--nats", server.url, "--name", "t1"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("connected to")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /Worker t1 \(pid \d+\) connected to nats:/);
  child.kill("SIGTERM");
  const status = await child.status;
  await reader.cancel();
  assert.equal(status.code, 0);
});
