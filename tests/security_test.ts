/**
 * Strangers stay out of the control plane: a real nats-server with real credentials (passwords,
 * token, NKey, TLS and mutual TLS with certificates made here by openssl) admits the right clients,
 * refuses the others with a clear error that carries no secret, and keeps each role to its subjects;
 * a distributed fit completes under the permissioned configuration with an external worker whose
 * command line holds only file paths.
 */
import assert from "node:assert/strict";
import { type NatsConnection, nkeys } from "npm:nats@2.29.3";
import { layers, optimizers, Sequential } from "../mod.ts";
import {
  connectNats,
  connectOptions,
  localCredentials,
  type NatsAuth,
  natsAuthFromEnvAndFlags,
  natsServerConfig,
  type NatsServerConfigOptions,
  startNatsServer,
} from "../shared/io/nats/mod.ts";
import { WORKER_MAIN } from "../coordinator/launcher.ts";
import { jobSubjects } from "../shared/io/protocol/mod.ts";
import { makeCertificates } from "./support/certificates.ts";
import { parseWorkerArgs } from "../worker/cli.ts";

const MAX_PAYLOAD = 8 * 1024 * 1024;

// After a refused login the server resets the socket; nats.js's Node transport under Deno can report
// that reset as an uncaught ECONNRESET well after connect() rejected with the explained error (which
// each test checks). connectNats swallows it for a grace period; a loaded machine can exceed it.
globalThis.addEventListener("error", (event) => {
  if ((event.error as { code?: unknown } | undefined)?.code === "ECONNRESET") event.preventDefault();
});

/** A temporary directory removed on dispose. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "shoal-security-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function server(options: Omit<NatsServerConfigOptions, "maxPayload">) {
  return await startNatsServer({ configText: natsServerConfig({ maxPayload: MAX_PAYLOAD, ...options }) });
}

/** The error `promise` rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    if (value && typeof (value as NatsConnection).close === "function") {
      await (value as NatsConnection).close();
    }
  } catch (error) {
    assert.ok(error instanceof Error, `expected an Error, got ${error}`);
    return error;
  }
  assert.fail("expected the connection to be refused");
}

Deno.test("user and password: the right password connects, a wrong one is refused naming the server", async () => {
  const creds = localCredentials();
  await using nats = await server({ users: creds.users });
  const nc = await connectNats({ ...creds.worker }, { servers: nats.url });
  await nc.flush();
  await nc.close();
  const wrong = "not-the-password-7d1f";
  const error = await rejection(connectNats({ user: "worker", password: wrong }, { servers: nats.url }));
  assert.match(error.message, /authorization violation/i);
  assert.ok(error.message.includes(nats.url), error.message);
  assert.match(error.message, /user worker with a password/);
  assert.ok(!error.message.includes(wrong) && !error.message.includes(creds.worker.password));
  const anonymous = await rejection(connectNats(undefined, { servers: nats.url }));
  assert.match(anonymous.message, /authorization violation/i);
});

Deno.test("a password inside the URL is refused before connecting, and shown redacted", () => {
  assert.throws(
    () => connectOptions(undefined, { servers: "nats://worker:hunter2@127.0.0.1:4222" }),
    (e: Error) =>
      e instanceof TypeError && e.message.includes("nats://worker:***@127.0.0.1:4222") &&
      !e.message.includes("hunter2") && /--nats-password-file/.test(e.message),
  );
  assert.throws(
    () => parseWorkerArgs(["--nats", "nats://worker:hunter2@127.0.0.1:4222"], {}),
    (e: Error) => /carries a password/.test(e.message) && !e.message.includes("hunter2"),
  );
});

Deno.test("token auth: the token from a file connects, another token is refused", async () => {
  await using dir = await tempDir();
  const token = crypto.randomUUID();
  await Deno.writeTextFile(`${dir.path}/token`, `${token}\n`);
  await using nats = await server({ token });
  const auth = natsAuthFromEnvAndFlags({ tokenFile: `${dir.path}/token` }, {});
  assert.equal(auth?.token, token);
  const nc = await connectNats(auth, { servers: nats.url });
  await nc.flush();
  await nc.close();
  const error = await rejection(connectNats({ token: "wrong-token" }, { servers: nats.url }));
  assert.match(error.message, /authorization violation with a token/i);
  assert.ok(!error.message.includes("wrong-token"));
});

Deno.test("NKey auth: a seed file of a registered key connects, an unknown key is refused", async () => {
  await using dir = await tempDir();
  const known = nkeys.createUser();
  const stranger = nkeys.createUser();
  const seedFile = (kp: typeof known, name: string) => {
    const path = `${dir.path}/${name}.nk`;
    Deno.writeTextFileSync(path, new TextDecoder().decode(kp.getSeed()) + "\n");
    return path;
  };
  await using nats = await server({ users: [{ role: "worker", nkey: known.getPublicKey() }] });
  const auth = natsAuthFromEnvAndFlags({ nkeySeedFile: seedFile(known, "known") }, {});
  const nc = await connectNats(auth, { servers: nats.url });
  await nc.flush();
  await nc.close();
  const strangerAuth = natsAuthFromEnvAndFlags({ nkeySeedFile: seedFile(stranger, "stranger") }, {});
  const error = await rejection(connectNats(strangerAuth, { servers: nats.url }));
  assert.match(error.message, /authorization violation with an NKey/i);
  assert.ok(!error.message.includes(strangerAuth!.nkeySeed!));
});

Deno.test("TLS: the CA that signed the server connects; no CA or another CA fails clearly", async () => {
  await using dir = await tempDir();
  const certs = await makeCertificates(dir.path);
  const creds = localCredentials();
  await using nats = await server({
    users: creds.users,
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
  });
  const nc = await connectNats({ ...creds.worker, tls: { caFile: certs.ca } }, { servers: nats.url });
  assert.equal(nc.info?.tls_required, true);
  await nc.flush();
  await nc.close();
  for (const tls of [undefined, { caFile: certs.otherCa }]) {
    const error = await rejection(
      connectNats({ ...creds.worker, ...(tls ? { tls } : {}) }, { servers: nats.url }),
    );
    assert.match(error.message, /TLS verification failed/);
    assert.match(error.message, /--nats-tls-ca/);
    assert.ok(error.message.includes(nats.url));
  }
});

Deno.test("mutual TLS: a client certificate signed by the CA connects, none is refused", async () => {
  await using dir = await tempDir();
  const certs = await makeCertificates(dir.path);
  await using nats = await server({
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.ca, verify: true },
  });
  const auth = natsAuthFromEnvAndFlags(
    { tlsCa: certs.ca, tlsCert: certs.clientCert, tlsKey: certs.clientKey },
    {},
  );
  const nc = await connectNats(auth, { servers: nats.url });
  await nc.flush();
  await nc.close();
  // TLS 1.3 reports a missing client certificate after the handshake, where nats.js under Deno
  // raises it outside any promise: try it in a child process and read its verdict.
  const clientOptions = JSON.stringify({ servers: nats.url, tls: { caFile: certs.ca }, timeout: 2000 });
  const script = `import { connect } from "npm:nats@2.29.3";
    const nc = await connect(${clientOptions});
    await nc.flush();
    console.log("admitted");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(!out.success, `a client without a certificate was admitted: ${text}`);
  assert.doesNotMatch(text, /admitted/);
});

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}

/** Collects the server-reported errors of a connection. */
function errorsOf(nc: NatsConnection): string[] {
  const seen: string[] = [];
  (async () => {
    for await (const s of nc.status()) if (s.type === "error") seen.push(String(s.data));
  })();
  return seen;
}

Deno.test("permissions: a worker cannot publish weights, work, hello or end; the coordinator can", async () => {
  const creds = localCredentials();
  await using nats = await server({ users: creds.users });
  const subjects = jobSubjects("secjob");
  const coordinator = await connectNats(creds.coordinator, { servers: nats.url });
  const worker = await connectNats(creds.worker, { servers: nats.url });
  try {
    const received: string[] = [];
    for (const subject of [subjects.weights, subjects.worker("w1"), subjects.hello, subjects.end]) {
      worker.subscribe(subject, { callback: (_e, msg) => received.push(`worker got ${msg.subject}`) });
    }
    coordinator.subscribe(subjects.join, {
      callback: (_e, msg) => received.push(`coordinator got ${msg.subject}`),
    });
    await worker.flush();
    await coordinator.flush();

    const workerErrors = errorsOf(worker);
    for (const subject of [subjects.weights, subjects.worker("w1"), subjects.hello, subjects.end]) {
      worker.publish(subject, new Uint8Array([1]));
    }
    await worker.flush();
    await delay(200, undefined);
    assert.deepEqual(received, [], "a message the worker may not publish was delivered");
    assert.equal(workerErrors.filter((e) => e === "PERMISSIONS_VIOLATION").length, 4, workerErrors.join());
    const log = nats.recentLog().join("\n");
    assert.match(log, /Publish Violation.*"worker".*shoal\.secjob\.weights/);
    assert.match(log, /Publish Violation.*"worker".*shoal\.secjob\.w\.w1/);

    // A worker may not listen in on what workers send the coordinator.
    worker.subscribe(subjects.join);
    await worker.flush().catch(() => {});
    await delay(100, undefined);
    assert.match(nats.recentLog().join("\n"), /Subscription Violation.*"worker".*shoal\.secjob\.join/);

    for (const subject of [subjects.weights, subjects.worker("w1"), subjects.hello, subjects.end]) {
      coordinator.publish(subject, new Uint8Array([1]));
    }
    worker.publish(subjects.join, new Uint8Array([1]));
    await coordinator.flush();
    await worker.flush();
    await delay(200, undefined);
    assert.deepEqual(received.sort(), [
      "coordinator got shoal.secjob.join",
      "worker got shoal.secjob.end",
      "worker got shoal.secjob.hello",
      "worker got shoal.secjob.w.w1",
      "worker got shoal.secjob.weights",
    ]);
  } finally {
    await worker.close();
    await coordinator.close();
  }
});

Deno.test("a distributed fit completes under the permissioned config with an external worker", async () => {
  await using dir = await tempDir();
  const creds = localCredentials();
  await using nats = await server({ users: creds.users });
  const passwordFile = `${dir.path}/worker.password`;
  await Deno.writeTextFile(passwordFile, creds.worker.password, { mode: 0o600 });
  const job = `sec${crypto.randomUUID().slice(0, 8)}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      WORKER_MAIN,
      "--nats",
      nats.url,
      "--name",
      "w0",
      "--job",
      job,
      "--backend",
      "cpu",
      "--nats-user",
      "worker",
      "--nats-password-file",
      passwordFile,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const reading = (async () => {
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) return;
      log += value;
    }
  })();
  try {
    // Right after spawn the child may not have exec'd yet: wait for its own command line.
    let cmdline = "";
    for (let i = 0; i < 100 && !cmdline.includes("worker/main.ts"); i++) {
      cmdline = await Deno.readTextFile(`/proc/${child.pid}/cmdline`);
      if (!cmdline.includes("worker/main.ts")) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(cmdline.includes(passwordFile), "the password file path is on the command line");
    assert.ok(!cmdline.includes(creds.worker.password), "the password is on the worker's command line");
    const serverCmdline = await Deno.readTextFile(`/proc/${nats.pid}/cmdline`);
    for (const secret of [creds.worker.password, creds.coordinator.password]) {
      assert.ok(!serverCmdline.includes(secret), "a password is on the server's command line");
    }

    const model = new Sequential([
      new layers.Dense(8, { activation: "relu", inputShape: [4] }),
      new layers.Dense(2, { activation: "softmax" }),
    ], { seed: 3 });
    model.compile({
      optimizer: new optimizers.Adam({ learningRate: 0.01 }),
      loss: "sparse_categorical_crossentropy",
    });
    const x = new Float32Array(64 * 4).map((_, i) => Math.sin(i));
    const y = new Float32Array(64).map((_, i) => (x[i * 4]! > 0 ? 1 : 0));
    const auth: NatsAuth = { ...creds.coordinator };
    const history = await model.fit({ data: x, shape: [64, 4] }, { data: y, shape: [64] }, {
      epochs: 2,
      batchSize: 16,
      verbose: 0,
      backend: "cpu",
      distribute: { workers: 1, nats: nats.url, auth, job, joinTimeoutSeconds: 60 },
    });
    const loss = (history.history as Record<string, number[]>).loss!;
    assert.equal(loss.length, 2);
    assert.ok(loss.every(Number.isFinite), `loss: ${loss}`);
    const status = await child.status;
    assert.equal(status.code, 0, log);
    assert.ok(!log.includes(creds.worker.password), "the worker logged its password");
    assert.doesNotMatch(nats.recentLog().join("\n"), /Violation/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await reading;
  }
});
