import assert from "node:assert/strict";
import { BodyBuffers, float32WithHeadRoom, FrameError, FrameReader, FrameWriter } from "./frames.ts";
import { encodeMessage } from "../nats/codec.ts";

/** A byte source that returns `stream` in reads of at most `cut` bytes. */
function source(stream: Uint8Array, cut = Infinity) {
  let offset = 0;
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      if (offset >= stream.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, stream.length - offset, cut);
      buffer.set(stream.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** A byte sink that keeps what is written, accepting at most `cut` bytes per write. */
function sink(cut = Infinity) {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write(bytes: Uint8Array): Promise<number> {
      const n = Math.min(bytes.length, cut);
      chunks.push(bytes.slice(0, n));
      return Promise.resolve(n);
    },
    bytes(): Uint8Array {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}

Deno.test("frames written back to back read back whole, in order, whatever the read sizes", async () => {
  const out = sink(100_003);
  const writer = new FrameWriter(out);
  const sizes = [0, 1, 7, 65_535, 65_536, 1_000_001, 3];
  const bodies = sizes.map((n, k) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + k) & 255));
  await Promise.all(
    bodies.map((body, k) => writer.send({ k }, k === 4 ? [body.subarray(0, 10), body.subarray(10)] : body)),
  );
  for (const cut of [Infinity, 1, 17, 4096]) {
    const reader = new FrameReader(source(out.bytes(), cut), 2_000_000);
    for (const [k, body] of bodies.entries()) {
      const frame = await reader.next();
      assert.ok(frame, `frame ${k} with reads of ${cut}`);
      assert.deepEqual(frame.header, { k });
      assert.equal(frame.body.byteOffset, 0);
      assert.deepEqual(frame.body, body);
    }
    assert.equal(await reader.next(), null);
  }
});

Deno.test("frames sent together go out in one write while small, a large body in a write of its own", async () => {
  const out = sink();
  const writer = new FrameWriter(out);
  const small = Uint8Array.of(1, 2, 3);
  const large = new Uint8Array(200_000).fill(9);
  await writer.sendAll([{ header: { t: "weights", shm: 1 } }, { header: { t: "req", id: 1 }, body: small }]);
  assert.equal(out.chunks.length, 1, "two small frames: one write, one wake-up of the reader");
  await writer.sendAll([{ header: { k: 1 } }, { header: { k: 2 }, body: large }, {
    header: { k: 3 },
    body: small,
  }]);
  // The first frame and the large one's head together; the body alone; the last frame alone.
  assert.deepEqual(out.chunks.slice(1).map((c) => c.length > 100_000), [false, true, false]);
  assert.equal(writer.bytesWritten, out.bytes().length);
  const reader = new FrameReader(source(out.bytes()), 1_000_000);
  const read = [];
  for (let frame = await reader.next(); frame; frame = await reader.next()) read.push(frame);
  assert.deepEqual(read.map((f) => [f.header, f.body.length]), [
    [{ t: "weights", shm: 1 }, 0],
    [{ t: "req", id: 1 }, 3],
    [{ k: 1 }, 0],
    [{ k: 2 }, 200_000],
    [{ k: 3 }, 3],
  ]);
  assert.deepEqual(read[3]!.body, large);
});

Deno.test("a frame over the body limit is refused from its prefix, before its body is read", async () => {
  const huge = encodeMessage({ t: "x" });
  new DataView(huge.buffer).setUint32(8, 4_000_000_000, true);
  let reads = 0;
  const counting = source(huge);
  const reader = new FrameReader({ read: (b) => (reads++, counting.read(b)) }, 1024);
  await assert.rejects(
    reader.next(),
    (e: Error) => e instanceof FrameError && /at most 1024 bytes: it declares 4000000000/.test(e.message),
  );
  assert.equal(reads, 1);
});

Deno.test("truncated frames, foreign bytes and bad headers are errors, not short messages", async () => {
  const whole = encodeMessage({ ok: true }, new Uint8Array(100).fill(7));
  for (const cut of [5, 16, 30, whole.length - 1]) {
    const reader = new FrameReader(source(whole.subarray(0, cut)), 1024);
    await assert.rejects(
      reader.next(),
      (e: Error) => e instanceof FrameError && /truncated/.test(e.message),
      `cut at ${cut}`,
    );
  }
  const http = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await assert.rejects(new FrameReader(source(http), 1024).next(), /does not start with "SHL1"/);
  const bad = encodeMessage({ a: 1 });
  bad[16] = 0xff;
  await assert.rejects(new FrameReader(source(bad), 1024).next(), /not UTF-8 JSON/);
  const header = encodeMessage({});
  new DataView(header.buffer).setUint32(4, 1 << 20, true);
  await assert.rejects(new FrameReader(source(header), 1024).next(), /header must be at most/);
});

Deno.test("a failed write fails that frame and every later one", async () => {
  let writes = 0;
  const writer = new FrameWriter({
    write: () => ++writes === 1 ? Promise.reject(new Error("broken pipe")) : Promise.resolve(1),
  });
  await assert.rejects(writer.send({ a: 1 }), /broken pipe/);
  await assert.rejects(writer.send({ a: 2 }), /broken pipe/);
  assert.equal(writes, 1);
});

Deno.test("a body is read into the buffer its header names, and into its own when that does not fit", async () => {
  const out = sink();
  const writer = new FrameWriter(out);
  const bodies = [300_000, 300_000, 200_000, 100].map((n, k) => new Uint8Array(n).fill(k + 1));
  for (const [k, body] of bodies.entries()) await writer.send({ slot: k % 2 }, body);
  const reader = new FrameReader(source(out.bytes(), 65_536), 1_000_000);
  const buffers = new BodyBuffers();
  const seen: Uint8Array[] = [];
  for (let k = 0; k < bodies.length; k++) {
    const frame = await reader.next((header, bytes) =>
      k === 3 ? new Uint8Array(bytes + 1) : buffers.take((header as { slot: number }).slot, bytes)
    );
    assert.deepEqual(frame!.body, bodies[k]);
    seen.push(frame!.body);
  }
  assert.equal(seen[2]!.buffer, seen[0]!.buffer, "slot 0's buffer is reused for a smaller body");
  assert.notEqual(seen[1]!.buffer, seen[0]!.buffer);
  assert.equal(seen[3]!.byteLength, 100, "a destination of the wrong length is not used");
  assert.equal(seen[0]![0], 3, "a slot's earlier body is overwritten by the next one");
});

Deno.test("a body sink hears every read of its body, ending at the body's length", async () => {
  const out = sink();
  const body = Uint8Array.from({ length: 100_000 }, (_, i) => i & 255);
  await new FrameWriter(out).send({ t: "x" }, body);
  for (const cut of [17, 4096, 65_536, Infinity]) {
    const reader = new FrameReader(source(out.bytes(), cut), 1_000_000);
    const heard: number[] = [];
    const into = new Uint8Array(body.length);
    const frame = await reader.next(() => ({ into, onRead: (bytes) => heard.push(bytes) }));
    assert.equal(frame!.body, into, `reads of ${cut}: the sink's array holds the body`);
    assert.deepEqual(frame!.body, body);
    assert.ok(heard.length > 0 && heard.at(-1) === body.length, `reads of ${cut}: ended at ${heard.at(-1)}`);
    assert.ok(heard.every((n, i) => i === 0 || n > heard[i - 1]!), `reads of ${cut}: ${heard.slice(0, 5)}…`);
  }
});

Deno.test("a body in head room goes out in one write with its head, and its small tail in one more", async () => {
  const out = sink();
  const writer = new FrameWriter(out);
  const grads = float32WithHeadRoom(50_000);
  for (let i = 0; i < grads.length; i++) grads[i] = i / 7;
  const tail = [new Uint8Array(8).fill(1), new Float32Array([1, 2, 3]), new Float32Array(5).fill(-1)];
  await writer.send({ t: "rep", id: 3 }, [grads, ...tail]);
  assert.equal(out.chunks.length, 2, `writes: ${out.chunks.map((c) => c.length)}`);
  await writer.send({ t: "rep", id: 4 }, new Float32Array(50_000));
  assert.equal(out.chunks.length, 4, "an array without head room: its head and body are two writes");
  const reader = new FrameReader(source(out.bytes(), 1000), 1_000_000);
  const first = await reader.next();
  assert.deepEqual(first!.header, { t: "rep", id: 3 });
  const values = new Float32Array(first!.body.buffer, 0, grads.length);
  assert.deepEqual(values, grads);
  assert.deepEqual(first!.body.subarray(grads.byteLength, grads.byteLength + 8), tail[0]);
  assert.deepEqual(
    new Float32Array(first!.body.slice(grads.byteLength + 8).buffer),
    Float32Array.of(1, 2, 3, -1, -1, -1, -1, -1),
  );
  assert.deepEqual((await reader.next())!.header, { t: "rep", id: 4 });
});

Deno.test("a small body in head room goes out in one write with its head, not copied into it", async () => {
  const out = sink();
  const writer = new FrameWriter(out);
  const chunk = float32WithHeadRoom(1024).subarray(0, 700);
  chunk.forEach((_, i) => chunk[i] = i / 3);
  const room = new Uint8Array(chunk.buffer, 0, chunk.byteOffset);
  await writer.send({ t: "rchunk", round: 0 }, chunk);
  assert.equal(out.chunks.length, 1, `writes: ${out.chunks.map((c) => c.length)}`);
  assert.notDeepEqual(
    room,
    new Uint8Array(room.length),
    "the head was written into the room before the body",
  );
  const frame = await new FrameReader(source(out.bytes()), 1 << 20).next();
  assert.deepEqual(frame!.header, { t: "rchunk", round: 0 });
  assert.deepEqual(new Float32Array(frame!.body.buffer, 0, chunk.length), chunk);
});

Deno.test("a view further into a head-room array keeps the values before it: its head is a write of its own", async () => {
  const out = sink();
  const writer = new FrameWriter(out);
  const values = float32WithHeadRoom(40_000);
  for (let i = 0; i < values.length; i++) values[i] = i;
  const before = values.slice(0, 20_000);
  await writer.send({ t: "rchunk", chunk: 1 }, values.subarray(20_000));
  assert.deepEqual(values.subarray(0, 20_000), before, "the values before the view are unchanged");
  assert.equal(out.chunks.length, 2, "head, then body");
  const frame = await new FrameReader(source(out.bytes()), 1_000_000).next();
  assert.deepEqual(new Float32Array(frame!.body.buffer, 0, 20_000), values.subarray(20_000));
});
