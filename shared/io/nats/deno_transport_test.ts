import assert from "node:assert/strict";
import { ErrorCode, type NatsConnection, NatsError } from "nats";
import { connectNatsDeno, DenoTransport, LARGE_MESSAGE_BYTES, MessageFramer } from "./deno_transport.ts";
import { startNatsServer } from "./server.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/** The transport nats.js runs the connection on (not public API: read for the test only). */
function transportOf(nc: NatsConnection): unknown {
  return (nc as unknown as { protocol: { transport: unknown } }).protocol.transport;
}

function msgFrame(body: number, line = `MSG big 1 ${body}\r\n`): Uint8Array {
  const head = encode(line);
  const frame = new Uint8Array(head.length + body + 2);
  frame.set(head);
  frame.set(encode("\r\n"), head.length + body);
  return frame;
}

Deno.test("MessageFramer finds a large MSG that a chunk holds only the start of", () => {
  const framer = new MessageFramer();
  const prefix = encode("PING\r\nMSG small 2 3\r\nabc\r\n+OK\r\n");
  const big = msgFrame(LARGE_MESSAGE_BYTES * 2);
  const chunk = new Uint8Array(prefix.length + 1000);
  chunk.set(prefix);
  chunk.set(big.subarray(0, 1000), prefix.length);
  assert.deepEqual(framer.scan(chunk), { start: prefix.length, length: big.length });
  // The framer took that message as consumed: the next op is seen at the next chunk's start.
  const next = msgFrame(LARGE_MESSAGE_BYTES * 3, `HMSG h 3 _INBOX.x 12 ${LARGE_MESSAGE_BYTES * 3}\r\n`);
  assert.deepEqual(framer.scan(next.subarray(0, 500)), { start: 0, length: next.length });
});

Deno.test("MessageFramer follows bodies and lines split across chunks and leaves small messages alone", () => {
  const framer = new MessageFramer();
  const small = msgFrame(LARGE_MESSAGE_BYTES / 2);
  assert.equal(framer.scan(small.subarray(0, 100)), undefined);
  assert.equal(framer.scan(small.subarray(100)), undefined);
  // A MSG line split across two chunks: its body is skipped, not mistaken for protocol lines.
  const body = encode("MSG fake 9 99999999\r\n");
  const frame = msgFrame(body.length, `MSG split 4 ${body.length}\r\n`);
  frame.set(body, frame.length - 2 - body.length);
  assert.equal(framer.scan(frame.subarray(0, 5)), undefined);
  assert.equal(framer.scan(frame.subarray(5)), undefined);
  const big = msgFrame(LARGE_MESSAGE_BYTES * 2);
  assert.deepEqual(framer.scan(big.subarray(0, 64)), { start: 0, length: big.length });
});

Deno.test("MessageFramer stops following a MSG line it cannot read, without throwing", () => {
  const framer = new MessageFramer();
  assert.equal(framer.scan(encode("MSG broken line without size x\r\n")), undefined);
  assert.equal(framer.scan(msgFrame(LARGE_MESSAGE_BYTES * 2).subarray(0, 100)), undefined);
});

Deno.test("connectNatsDeno moves large and small messages intact and in order on Deno sockets", async () => {
  await using server = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
  const a = await connectNatsDeno({ servers: server.url });
  const b = await connectNatsDeno({ servers: server.url });
  try {
    assert.ok(transportOf(a) instanceof DenoTransport);
    assert.equal(a.info?.max_payload, 8 * 1024 * 1024);
    const sizes = [3, 5 * 1024 * 1024 + 7, 0, 100_000, 2, 3 * 1024 * 1024];
    const received: Uint8Array[] = [];
    const done = Promise.withResolvers<void>();
    b.subscribe("data", {
      callback: (_err, msg) => {
        received.push(msg.data);
        if (received.length === sizes.length) done.resolve();
      },
    });
    await b.flush();
    const sent = sizes.map((size, k) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + k) & 255));
    for (const payload of sent) a.publish("data", payload);
    await done.promise;
    assert.deepEqual(received.map((r) => r.length), sizes);
    for (let k = 0; k < sizes.length; k++) assert.ok(equalBytes(received[k]!, sent[k]!), `message ${k}`);
    b.subscribe("echo", { callback: (_err, msg) => msg.respond(msg.data) });
    await b.flush();
    const reply = await a.request("echo", sent[1], { timeout: 5000 });
    assert.ok(equalBytes(reply.data, sent[1]!));
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("connectNatsDeno reports a refused connection as nats.js does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const error = await connectNatsDeno({ servers: `nats://127.0.0.1:${port}`, timeout: 2000 }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof NatsError, String(error));
  assert.equal(error.code, ErrorCode.ConnectionRefused);
});

Deno.test("a connection on DenoTransport reconnects on DenoTransport after a server restart", async () => {
  await using server = await startNatsServer();
  const nc = await connectNatsDeno({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    nc.subscribe("ping", { callback: (_err, msg) => msg.respond(new Uint8Array([7])) });
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return true;
      return false;
    })();
    const before = transportOf(nc);
    await server.restart();
    assert.equal(await reconnected, true);
    assert.notEqual(transportOf(nc), before);
    assert.ok(transportOf(nc) instanceof DenoTransport);
    const reply = await nc.request("ping", undefined, { timeout: 2000 });
    assert.deepEqual([...reply.data], [7]);
  } finally {
    await nc.close();
  }
});

Deno.test("TLS with a CA runs on Deno sockets; mutual TLS connects too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-deno-transport-" });
  try {
    await makeCertificates(dir);
    {
      await using server = await startNatsServer({
        extraConfig: `tls { cert_file: "${dir}/server.pem", key_file: "${dir}/server.key" }`,
      });
      const nc = await connectNatsDeno({ servers: server.url, tls: { caFile: `${dir}/ca.pem` } });
      assert.ok(transportOf(nc) instanceof DenoTransport);
      assert.equal(nc.info?.tls_required, true);
      const sub = nc.subscribe("t", { max: 1 });
      nc.publish("t", new Uint8Array(200_000).fill(9));
      for await (const msg of sub) assert.equal(msg.data.length, 200_000);
      await nc.close();
      const untrusted = await connectNatsDeno({ servers: server.url, timeout: 3000 }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.match(String(untrusted?.message), /certificate|UnknownIssuer/i);
    }
    await using mutual = await startNatsServer({
      extraConfig: `tls { cert_file: "${dir}/server.pem", key_file: "${dir}/server.key", ` +
        `ca_file: "${dir}/ca.pem", verify: true }`,
    });
    const nc = await connectNatsDeno({
      servers: mutual.url,
      tls: { caFile: `${dir}/ca.pem`, certFile: `${dir}/client.pem`, keyFile: `${dir}/client.key` },
    });
    assert.ok(nc.isClosed() === false);
    await nc.flush();
    await nc.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function openssl(dir: string, args: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args: args.split(" "), cwd: dir, stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA, and a server (127.0.0.1) and a client certificate signed by it. */
async function makeCertificates(dir: string): Promise<void> {
  const key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  await openssl(dir, `req -x509 ${key} -keyout ca.key -out ca.pem -days 1 -subj /CN=ca`);
  await Deno.writeTextFile(`${dir}/server.ext`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await Deno.writeTextFile(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  for (const name of ["server", "client"]) {
    await openssl(dir, `req ${key} -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`);
    await openssl(
      dir,
      `x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ${name}.pem -days 1 ` +
        `-extfile ${name}.ext`,
    );
  }
}
