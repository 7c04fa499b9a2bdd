import assert from "node:assert/strict";
import { connect, ErrorCode, type NatsConnection, NatsError } from "npm:nats@2.29.3";
import { z } from "npm:zod@4.6.7";
import { asFloat32, encodeMessage, MAGIC_CHUNK, MessageFormatError } from "./codec.ts";
import { decodeF32, encodeF32, FloatEncodingSchema } from "./float_encoding.ts";
import { PayloadTooLargeError, publishLarge, Reassembler, requestLarge } from "./chunking.ts";
import { startNatsServer } from "./server.ts";
import { serveMessages } from "./safe_subscribe.ts";

const Header = z.object({ step: z.int(), encoding: FloatEncodingSchema });
const Ack = z.object({ ok: z.boolean(), floats: z.int() });
const MiB = 1024 * 1024;

function floats(length: number): Float32Array {
  return new Float32Array(length).map((_, i) => Math.sin(i) * (1 + (i % 7)));
}

function mismatches(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let count = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) count++;
  return count;
}

/** Receives the next message on `subject` (subscribed before `send` runs) and reassembles it. */
async function receiveOne(nc: NatsConnection, subject: string, send: () => Promise<number>) {
  const sub = nc.subscribe(subject);
  const reassembler = new Reassembler();
  const received = (async () => {
    let messages = 0;
    for await (const msg of sub) {
      messages++;
      const done = reassembler.push(msg.data, Header);
      if (done) return { ...done, messages };
    }
    throw new Error("subscription closed before a whole message arrived");
  })();
  await nc.flush();
  const sent = await send();
  const result = await received;
  sub.unsubscribe();
  return { ...result, sent };
}

Deno.test("header + body round-trip through nats-server", async (t) => {
  await using server = await startNatsServer();
  await using smallServer = await startNatsServer({ maxPayload: 1 * MiB });
  const nc = await connect({ servers: server.url });
  const small = await connect({ servers: smallServer.url });
  try {
    for (const encoding of ["f32", "bf16"] as const) {
      for (const bytes of [0, 1024, 2 * MiB]) {
        await t.step(`${encoding}, ${bytes} bytes of float32`, async () => {
          const values = floats(bytes / 4);
          const body = encodeF32(values, encoding);
          const got = await receiveOne(
            nc,
            "roundtrip",
            () => publishLarge(nc, "roundtrip", { step: bytes, encoding }, body),
          );
          assert.deepEqual(got.header, { step: bytes, encoding });
          assert.equal(got.messages, got.sent);
          assert.equal(got.sent, 1, "one message up to max_payload");
          const decoded = decodeF32(got.body, got.header.encoding);
          let worst = 0;
          for (let i = 0; i < values.length; i++) {
            worst = Math.max(
              worst,
              Math.abs(decoded[i]! - values[i]!) / Math.max(Math.abs(values[i]!), 1e-30),
            );
          }
          assert.ok(worst <= (encoding === "f32" ? 0 : 2 ** -8), `worst relative error ${worst}`);
        });
      }
    }
    await t.step("a body larger than max_payload is chunked and reassembled exactly", async () => {
      const values = floats(Math.floor(2.5 * MiB / 4) + 3);
      const got = await receiveOne(
        small,
        "big",
        () => publishLarge(small, "big", { step: 9, encoding: "f32" }, values),
      );
      assert.equal(small.info?.max_payload, MiB);
      assert.equal(got.sent, 3);
      assert.equal(got.messages, 3);
      assert.equal(mismatches(asFloat32(got.body), values), 0);
    });
    await t.step("a body of several arrays is chunked and reassembled in order", async () => {
      const first = floats(Math.floor(0.75 * MiB / 4));
      const second = floats(Math.floor(0.5 * MiB / 4) + 1).map((x) => -x);
      const got = await receiveOne(
        small,
        "parts",
        () => publishLarge(small, "parts", { step: 3, encoding: "f32" }, [first, second]),
      );
      assert.equal(got.sent, 2);
      const values = new Float32Array(first.length + second.length);
      values.set(first);
      values.set(second, first.length);
      assert.equal(mismatches(asFloat32(got.body), values), 0);
    });
    await t.step("a request with no subscriber fails with 'no responders' at once", async () => {
      const started = performance.now();
      await assert.rejects(
        requestLarge(nc, "nobody.home", { step: 1, encoding: "f32" }, floats(10), Ack, { timeout: 5000 }),
        (error: unknown) => error instanceof NatsError && error.code === ErrorCode.NoResponders,
      );
      const ms = performance.now() - started;
      console.log(`no responders after ${ms.toFixed(1)} ms`);
      assert.ok(ms < 500, `took ${ms} ms`);
    });
    await t.step("requestLarge sends a chunked request and gets a chunked reply", async () => {
      const service = serveMessages(small, "double", Header, ({ header, body }, msg) => {
        const doubled = asFloat32(body).map((x) => 2 * x);
        return publishLarge(small, msg.reply!, { ok: true, floats: doubled.length + header.step }, doubled);
      });
      try {
        const values = floats(300_000); // 1.2 MB each way: chunked on this server
        const reply = await requestLarge(small, "double", { step: 0, encoding: "f32" }, values, Ack);
        assert.deepEqual(reply.header, { ok: true, floats: values.length });
        assert.equal(mismatches(asFloat32(reply.body), values.map((x) => 2 * x)), 0);
      } finally {
        await service.stop();
      }
    });
    await t.step("requestLarge times out when the responder never answers", async () => {
      const service = serveMessages(nc, "silent", Header, () => {});
      try {
        await assert.rejects(
          requestLarge(nc, "silent", { step: 0, encoding: "f32" }, undefined, Ack, { timeout: 100 }),
          (error: unknown) => error instanceof NatsError && error.code === ErrorCode.Timeout,
        );
      } finally {
        await service.stop();
      }
    });
  } finally {
    await nc.close();
    await small.close();
  }
});

function chunk(id: string, seq: number, count: number, body: Uint8Array, size: number, offset: number) {
  const header = seq === 0 ? { id, seq, count, size, offset, header: { step: 5, encoding: "f32" } } : {
    id,
    seq,
    count,
    size,
    offset,
  };
  return encodeMessage(header, body, MAGIC_CHUNK);
}

function chunksOf(id: string, bytes: Uint8Array, per: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const count = Math.ceil(bytes.length / per);
  for (let seq = 0; seq < count; seq++) {
    out.push(chunk(id, seq, count, bytes.subarray(seq * per, (seq + 1) * per), bytes.length, seq * per));
  }
  return out;
}

Deno.test("Reassembler accepts out-of-order and duplicate chunks", () => {
  const bytes = new Uint8Array(1000).map((_, i) => i * 7);
  const [a, b, c, d] = chunksOf("t1", bytes, 256);
  const reassembler = new Reassembler();
  assert.equal(reassembler.push(d!, Header), undefined);
  assert.equal(reassembler.push(b!, Header), undefined);
  assert.equal(reassembler.push(b!, Header), undefined);
  assert.equal(reassembler.pendingBytes, 1000);
  assert.equal(reassembler.push(a!, Header), undefined);
  const done = reassembler.push(c!, Header);
  assert.deepEqual(done?.header, { step: 5, encoding: "f32" });
  assert.deepEqual(done?.body, bytes);
  assert.equal(reassembler.pendingTransfers, 0);
  assert.equal(reassembler.pendingBytes, 0);
  assert.equal(reassembler.push(c!, Header), undefined, "a late duplicate of a finished transfer is ignored");
  assert.equal(reassembler.pendingTransfers, 0);
});

Deno.test("Reassembler drops idle transfers after the timeout", () => {
  let now = 0;
  const dropped: string[] = [];
  const reassembler = new Reassembler({ timeoutMs: 100, now: () => now, onDrop: (id) => dropped.push(id) });
  const [a] = chunksOf("slow", new Uint8Array(100), 50);
  reassembler.push(a!, Header);
  now = 100;
  assert.deepEqual(reassembler.sweep(), []);
  now = 201;
  assert.deepEqual(reassembler.sweep(), ["slow"]);
  assert.deepEqual(dropped, ["slow"]);
  assert.equal(reassembler.pendingBytes, 0);
});

Deno.test("Reassembler bounds memory and rejects inconsistent chunks", () => {
  const reassembler = new Reassembler({ maxBodyBytes: 1000, maxPendingBytes: 1500 });
  assert.throws(
    () => reassembler.push(chunk("huge", 0, 2, new Uint8Array(8), 2000, 0), Header),
    PayloadTooLargeError,
  );
  reassembler.push(chunk("one", 0, 2, new Uint8Array(8), 1000, 0), Header);
  assert.throws(
    () => reassembler.push(chunk("two", 0, 2, new Uint8Array(8), 1000, 0), Header),
    /at most 1500 bytes: 1000 bytes are pending in 1 transfers/,
  );
  assert.throws(
    () => reassembler.push(chunk("one", 1, 2, new Uint8Array(8), 1000, 996), Header),
    MessageFormatError,
  );
  assert.equal(reassembler.pendingTransfers, 0, "an inconsistent transfer is dropped");
  const [first, second] = chunksOf("short", new Uint8Array(100), 50);
  const bad = chunk("short", 1, 2, new Uint8Array(10), 100, 50);
  reassembler.push(first!, Header);
  assert.throws(() => reassembler.push(bad, Header), /hold 60 bytes \(expected 100\)/);
  assert.equal(reassembler.push(second!, Header), undefined);
  assert.throws(
    () => reassembler.push(encodeMessage({ step: 1, encoding: "f32" }, new Uint8Array(1001)), Header),
    {
      name: "PayloadTooLargeError",
    },
  );
});
