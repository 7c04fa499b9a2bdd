import assert from "node:assert/strict";
import { connect } from "npm:nats@2.29.3";
import { startNatsServer } from "./server.ts";

function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("startNatsServer serves clients on a free loopback port with the configured max_payload", async () => {
  await using server = await startNatsServer({ maxPayload: 3 * 1024 * 1024 });
  assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(server.port > 0);
  const nc = await connect({ servers: server.url });
  try {
    assert.equal(nc.info?.max_payload, 3 * 1024 * 1024);
    const sub = nc.subscribe("echo", { callback: (_err, msg) => msg.respond(msg.data) });
    const reply = await nc.request("echo", new Uint8Array([1, 2, 3]), { timeout: 2000 });
    assert.deepEqual([...reply.data], [1, 2, 3]);
    sub.unsubscribe();
  } finally {
    await nc.close();
  }
});

Deno.test("two servers get different ports", async () => {
  await using a = await startNatsServer();
  await using b = await startNatsServer();
  assert.notEqual(a.port, b.port);
});

Deno.test("stop ends the process and removes the temporary directory", async () => {
  const server = await startNatsServer({ jetstream: true });
  const pid = server.pid;
  assert.ok(processAlive(pid));
  assert.ok(await exists(`${server.dir}/nats.conf`));
  await server.stop();
  const status = await server.exited;
  assert.notEqual(status.signal, "SIGKILL", "the server should stop on SIGTERM within the grace");
  assert.equal(processAlive(pid), false);
  assert.equal(await exists(server.dir), false);
  await server.stop();
});

Deno.test("restart keeps the port and a reconnecting client carries on", async () => {
  await using server = await startNatsServer();
  const port = server.port;
  const oldPid = server.pid;
  const nc = await connect({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    const sub = nc.subscribe("ping", { callback: (_err, msg) => msg.respond(new Uint8Array([7])) });
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return true;
      return false;
    })();
    await server.restart();
    assert.equal(server.port, port);
    assert.notEqual(server.pid, oldPid);
    assert.equal(processAlive(oldPid), false);
    assert.equal(await reconnected, true);
    const reply = await nc.request("ping", undefined, { timeout: 2000 });
    assert.deepEqual([...reply.data], [7]);
    sub.unsubscribe();
  } finally {
    await nc.close();
  }
});

Deno.test("aborting the signal after start stops the server", async () => {
  const controller = new AbortController();
  const server = await startNatsServer({ signal: controller.signal });
  controller.abort();
  await server.exited;
  for (let i = 0; i < 100 && await exists(server.dir); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await exists(server.dir), false);
});

Deno.test("a missing binary says how to install nats-server", async () => {
  await assert.rejects(
    startNatsServer({ binary: "/nonexistent/nats-server" }),
    (error: unknown) =>
      error instanceof Deno.errors.NotFound && /apt-get install -y nats-server/.test(error.message),
  );
});

Deno.test("bad options are rejected with the offending value", async () => {
  await assert.rejects(startNatsServer({ maxPayload: 65 * 1024 * 1024 }), /current value is 68157440/);
  await assert.rejects(
    startNatsServer({ configText: "port: 1", jetstream: true }),
    /configText with jetstream/,
  );
});

Deno.test("a configuration the server refuses fails the start with its log", async () => {
  await assert.rejects(startNatsServer({ extraConfig: "this is { not valid" }), /exited before it was ready/);
});

Deno.test("the server dies with its parent process, even on SIGKILL", async () => {
  const script = `
    import { startNatsServer } from ${JSON.stringify(new URL("./server.ts", import.meta.url).href)};
    const server = await startNatsServer();
    console.log(server.pid, server.dir);
    await new Promise(() => {});
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const [pidText, dir] = text.trim().split(" ");
  const pid = Number(pidText);
  assert.ok(pid > 0 && processAlive(pid), `server pid ${text}`);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(processAlive(pid), false, `nats-server ${pid} outlived its SIGKILLed parent`);
  assert.match(dir ?? "", /shoal-nats-/);
  await Deno.remove(dir!, { recursive: true });
});
