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
    "--ring-listen",
    "0.0.0.0:7071",
  ]);
  assert.deepEqual(opts, {
    nats: "nats://127.0.0.1:4222",
    name: "w3",
    backend: "wasm",
    gpu: 1,
    job: "abc",
    ringListen: { hostname: "0.0.0.0", port: 7071 },
  });
});

Deno.test("parseWorkerArgs names the bad argument", () => {
  assert.throws(
    () => parseWorkerArgs([]),
    /--nats URL is required: .* e\.g\. deno task worker --nats nats:\/\/127\.0\.0\.1:4222/,
  );
  assert.throws(
    () => parseWorkerArgs(["--nat", "nats://x"]),
    /--nat is not an option\. Did you mean --nats\?/,
  );
  assert.throws(() => parseWorkerArgs(["--nats", "nats://x", "--name", "a.b"]), /--name is invalid/);
  assert.throws(
    () => parseWorkerArgs(["--nats", "nats://x", "--gpu", "one"]),
    /--gpu is invalid: .*current value is "one"/,
  );
  assert.throws(() => parseWorkerArgs(["--nats", "nats://x", "--backend", "torch"]), /--backend is invalid/);
  assert.throws(
    () => parseWorkerArgs(["--nats", "nats://x", "--job", "j1", "--join-timeout=-1"]),
    /--join-timeout is invalid: must be a number of seconds > 0; current value is "-1"/,
  );
  assert.throws(
    () => parseWorkerArgs(["--nats", "nats://x", "--join-timeout", "5"]),
    /--join-timeout only applies to a worker bound to one job: add --job ID/,
  );
  assert.equal(
    parseWorkerArgs(["--nats", "nats://x", "--job", "j1", "--join-timeout", "5"])?.joinTimeoutSeconds,
    5,
  );
  assert.throws(
    () => parseWorkerArgs(["--nats", "nats://x", "--ring-listen", "7071"]),
    /--ring-listen is invalid: expected HOST:PORT, e\.g\. 0\.0\.0\.0:7071 .*current value is "7071"/,
  );
  assert.equal(parseWorkerArgs(["--help"]), undefined);
  assert.match(parseWorkerArgs(["--nats", "nats://x"])!.name, /-\d+$/);
});

Deno.test("parseWorkerArgs takes relative credential files from the folder the command ran in", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/password`, "s3cret\n");
    const args = ["--nats", "nats://x", "--nats-user", "worker", "--nats-password-file", "password"];
    const opts = parseWorkerArgs(args, { INIT_CWD: dir });
    assert.deepEqual(opts?.auth, { user: "worker", password: "s3cret" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseWorkerArgs reads the ring's certificate and key from flags or the environment, both or neither", () => {
  const files: Record<string, string> = {
    "/c/ring.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "/c/ring.key": "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
    "/c/empty": "",
  };
  const read = (path: string) => {
    const text = files[path];
    if (text === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
    return text;
  };
  const env = { INIT_CWD: "/c" };
  const base = ["--nats", "nats://x"];
  const flags = parseWorkerArgs(
    [...base, "--ring-tls-cert", "ring.pem", "--ring-tls-key", "ring.key"],
    env,
    read,
  );
  assert.deepEqual(flags?.ringTls, { cert: files["/c/ring.pem"], key: files["/c/ring.key"] });
  const fromEnv = parseWorkerArgs(base, {
    ...env,
    SHOAL_RING_TLS_CERT: "/c/ring.pem",
    SHOAL_RING_TLS_KEY: "/c/ring.key",
  }, read);
  assert.deepEqual(fromEnv?.ringTls, flags?.ringTls);
  assert.equal(parseWorkerArgs(base, env, read)?.ringTls, undefined);
  assert.throws(
    () => parseWorkerArgs([...base, "--ring-tls-cert", "ring.pem"], env, read),
    /--ring-tls-cert needs its pair: add --ring-tls-key FILE \(or SHOAL_RING_TLS_KEY\), or give neither/,
  );
  assert.throws(
    () => parseWorkerArgs(base, { ...env, SHOAL_RING_TLS_KEY: "/c/ring.key" }, read),
    /--ring-tls-key needs its pair: add --ring-tls-cert FILE \(or SHOAL_RING_TLS_CERT\)/,
  );
  assert.throws(
    () => parseWorkerArgs([...base, "--ring-tls-cert", "gone.pem", "--ring-tls-key", "ring.key"], env, read),
    /Cannot read the ring's TLS certificate file \/c\/gone\.pem \(--ring-tls-cert \/ SHOAL_RING_TLS_CERT\): .*check the path/,
  );
  assert.throws(
    () => parseWorkerArgs([...base, "--ring-tls-cert", "ring.pem", "--ring-tls-key", "empty"], env, read),
    /Cannot use \/c\/empty as the ring's TLS key \(--ring-tls-key \/ SHOAL_RING_TLS_KEY\): it holds no PEM key/,
  );
});

Deno.test("a worker that cannot reach --nats says to check the URL and the coordinator's server", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, "--nats", `nats://127.0.0.1:${port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 1, err);
  assert.match(err, new RegExp(`^error: Cannot connect to NATS server nats://127\\.0\\.0\\.1:${port}: `));
  assert.match(err, /Check the --nats URL .* coordinator or its nats-server is running/);
  assert.doesNotMatch(err, /embedded/);
  assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
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

/** Runs a worker bound to job `j1` until it exits; returns its status and output. */
async function boundWorker(
  url: string,
  extra: string[],
  stop?: Deno.Signal,
): Promise<{ code: number; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "--nats",
      url,
      "--job",
      "j1",
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    err += value;
    if (stop && err.includes("connected to")) {
      child.kill(stop);
      stop = undefined;
    }
  }
  return { code: (await child.status).code, err };
}

Deno.test("a worker bound to a job exits 143 on SIGTERM and 75 when the job never announces itself", async () => {
  await using server = await startNatsServer();
  const stopped = await boundWorker(server.url, [], "SIGTERM");
  assert.equal(stopped.code, 143, stopped.err);
  const alone = await boundWorker(server.url, ["--join-timeout", "1"]);
  assert.equal(alone.code, 75, alone.err);
  assert.match(alone.err, /job j1 did not announce itself within 1 s \(--join-timeout\); giving up/);
});
