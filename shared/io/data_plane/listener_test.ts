import assert from "node:assert/strict";
import { makeCertificates } from "../../../tests/support/certificates.ts";
import { type FrameChannel, listenDataPlane, newJobSecret } from "./mod.ts";
import {
  type DataListenerOptions,
  DataPlaneAuthError,
  DataPlaneUnreachableError,
  dialDataPlane,
} from "./mod.ts";
import { encodeMessage } from "../nats/codec.ts";

interface Accepted {
  channel: FrameChannel;
  worker: string;
  role: string;
}

async function listen(overrides: Partial<DataListenerOptions> = {}) {
  const accepted: Accepted[] = [];
  const refused: string[] = [];
  const secret = newJobSecret();
  const listener = await listenDataPlane({
    job: "job1",
    secret,
    listen: { hostname: "127.0.0.1", port: 0 },
    maxBodyBytes: 4 << 20,
    onChannel: (channel, { worker, role }) => accepted.push({ channel, worker, role }),
    onRefused: (peer, reason) => refused.push(`${peer}: ${reason}`),
    ...overrides,
  });
  return { listener, secret, accepted, refused };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), what);
}

Deno.test("a worker with the job secret reaches the coordinator over its Unix socket and over TCP", async () => {
  const { listener, secret, accepted, refused } = await listen();
  await using _ = listener;
  assert.equal(listener.addresses.length, 2);
  assert.match(listener.addresses[0]!, /^unix:\/.*data\.sock$/);
  assert.match(listener.addresses[1]!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const options = { job: "job1", secret, worker: "w0", role: "work" as const, maxBodyBytes: 1 << 20 };
  for (const addresses of [listener.addresses, listener.addresses.slice(1)]) {
    const { channel, address } = await dialDataPlane(addresses, options);
    assert.equal(address, addresses[0]);
    await until(() => accepted.length > 0, "the coordinator admitted the connection");
    const server = accepted.pop()!;
    assert.equal(server.worker, "w0");
    assert.equal(server.role, "work");
    const body = new Float32Array(300_000).map((_, i) => i);
    // Both ends read while the other writes: a 1.2 MB frame does not fit the socket's buffer.
    const [frame] = await Promise.all([server.channel.next(), channel.send({ t: "ping" }, body)]);
    assert.deepEqual(frame?.header, { t: "ping" });
    assert.deepEqual(new Float32Array(frame!.body.buffer), body);
    channel.close();
    assert.equal(await server.channel.next(), null);
    assert.match((await server.channel.ended).message, /peer closed/);
  }
  assert.deepEqual(refused, []);
});

Deno.test("a wrong secret, another job or a refused worker is turned away, and the coordinator hears why", async () => {
  const { listener, secret, refused, accepted } = await listen({
    refusal: (worker) => worker === "stranger" ? "stranger is not a member of job job1" : undefined,
  });
  await using _ = listener;
  const base = { job: "job1", secret, worker: "w0", role: "work" as const, maxBodyBytes: 1024 };
  await assert.rejects(
    dialDataPlane(listener.addresses, { ...base, secret: newJobSecret() }),
    (e: Error) => e instanceof DataPlaneAuthError && /did not prove the secret of job job1/.test(e.message),
  );
  await assert.rejects(
    dialDataPlane(listener.addresses, { ...base, job: "job0" }),
    (e: Error) => e instanceof DataPlaneUnreachableError && /serves job job1, not job job0/.test(e.message),
  );
  await assert.rejects(dialDataPlane(listener.addresses, { ...base, worker: "stranger" }), /not a member/);
  await until(() => refused.length >= 2, "two refusals reported");
  assert.match(refused[0]!, /Unix socket.*did not prove the secret/);
  assert.match(refused.at(-1)!, /stranger is not a member/);
  assert.equal(accepted.length, 0);
});

Deno.test("a worker refuses a listener that does not know its job's secret", async () => {
  const { listener } = await listen();
  await using _ = listener;
  // The impostor sends the right challenge but cannot prove the secret the worker holds.
  const other = await listen();
  await using __ = other.listener;
  const options = {
    job: "job1",
    secret: other.secret,
    worker: "w0",
    role: "work" as const,
    maxBodyBytes: 1024,
  };
  await assert.rejects(dialDataPlane(listener.addresses, options), /did not prove the secret/);
});

Deno.test("an unauthenticated peer cannot send a body or hold the connection", async () => {
  const { listener, refused } = await listen();
  await using _ = listener;
  const address = listener.addresses[1]!.replace("tcp://", "");
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname: hostname!, port: Number(port) });
  const huge = encodeMessage({ t: "auth" });
  new DataView(huge.buffer).setUint32(8, 3_000_000_000, true);
  await conn.write(huge);
  const buffer = new Uint8Array(4096);
  let total = 0;
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    total += n;
  }
  conn.close();
  assert.ok(total < 4096, "the listener closed the connection after its challenge");
  await until(() => refused.length === 1, "the refusal is reported");
  assert.match(refused[0]!, /at most 0 bytes: it declares 3000000000/);
});

Deno.test("with certificates the TCP listener speaks TLS, verified against the CA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-data-tls-" });
  try {
    const certs = await makeCertificates(dir);
    const tls = {
      cert: await Deno.readTextFile(certs.serverCert),
      key: await Deno.readTextFile(certs.serverKey),
    };
    const { listener, secret, accepted } = await listen({ tls, unix: false });
    await using _ = listener;
    assert.match(listener.addresses[0]!, /^tls:\/\/127\.0\.0\.1:\d+$/);
    const options = { job: "job1", secret, worker: "w0", role: "sync" as const, maxBodyBytes: 1024 };
    const { channel } = await dialDataPlane(listener.addresses, {
      ...options,
      caCerts: [await Deno.readTextFile(certs.ca)],
    });
    assert.equal(channel.encrypted, true);
    await until(() => accepted.length === 1, "admitted over TLS");
    assert.equal(accepted[0]!.channel.encrypted, true);
    assert.equal(accepted[0]!.role, "sync");
    channel.close();
    await assert.rejects(
      dialDataPlane(listener.addresses, { ...options, caCerts: [await Deno.readTextFile(certs.otherCa)] }),
      (e: Error) => e instanceof DataPlaneUnreachableError && /certificate|UnknownIssuer/i.test(e.message),
    );
    const plain = listener.addresses[0]!.replace("tls://", "tcp://");
    await assert.rejects(dialDataPlane([plain], { ...options, timeoutMs: 1000 }), DataPlaneUnreachableError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
