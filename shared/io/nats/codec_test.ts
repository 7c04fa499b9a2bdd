import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { z } from "npm:zod@4.6.7";
import {
  asFloat32,
  BODY_ALIGNMENT,
  decodeMessage,
  encodeMessage,
  joinBody,
  MAGIC_CHUNK,
  MAX_HEADER_BYTES,
  MessageFormatError,
} from "./codec.ts";

const Header = z.object({ step: z.int(), kind: z.string() });

Deno.test("encodeMessage/decodeMessage round-trip header and body, body aligned", () => {
  for (const length of [0, 1, 3, 1000]) {
    const body = new Float32Array(length).map((_, i) => i * 0.5 - 7);
    const data = encodeMessage({ step: length, kind: "grad" }, body);
    const { header, body: bytes } = decodeMessage(data, Header);
    assert.deepEqual(header, { step: length, kind: "grad" });
    assert.equal(bytes.byteOffset % BODY_ALIGNMENT, 0);
    assert.deepEqual(asFloat32(bytes), body);
  }
});

Deno.test("a body of several arrays is laid end to end, as if joined first", () => {
  const params = new Float32Array([1, -2.5, 3]);
  const padding = new Uint8Array(4);
  const state = new Float32Array([7, 8]).subarray(1);
  const parts = [params, padding, state];
  const joined = joinBody(parts);
  assert.equal(joined.byteLength, 12 + 4 + 4);
  assert.deepEqual(
    encodeMessage({ step: 2, kind: "w" }, parts),
    encodeMessage({ step: 2, kind: "w" }, joined),
  );
  const { body } = decodeMessage(encodeMessage({ step: 2, kind: "w" }, parts), Header);
  assert.deepEqual(Array.from(asFloat32(body)), [1, -2.5, 3, 0, 8]);
  assert.equal(joinBody(params).buffer, params.buffer, "one array is not copied");
  assert.equal(joinBody(undefined).byteLength, 0);
});

Deno.test("decodeMessage copies the body of an unaligned message into an aligned buffer", () => {
  const body = new Float32Array([1.5, -2, 3.25, Number.NaN]);
  const data = encodeMessage({ step: 1, kind: "w" }, body);
  for (const shift of [1, 2, 3, 5]) {
    const backing = new Uint8Array(data.length + shift);
    backing.set(data, shift);
    const unaligned = backing.subarray(shift);
    assert.notEqual(unaligned.byteOffset % BODY_ALIGNMENT, 0);
    const decoded = decodeMessage(unaligned, Header);
    assert.equal(decoded.body.byteOffset % BODY_ALIGNMENT, 0);
    assert.notEqual(decoded.body.buffer, backing.buffer, "an unaligned body must be copied");
    assert.deepEqual(asFloat32(decoded.body), body);
  }
});

Deno.test("decodeMessage copies an unaligned body held in a Node Buffer (as nats.js msg.data is)", () => {
  const body = new Float32Array([4, 5, 6]);
  const data = encodeMessage({ step: 3, kind: "w" }, body);
  const pooled = Buffer.allocUnsafe(data.length + 3).subarray(3);
  pooled.set(data);
  assert.notEqual(pooled.byteOffset % BODY_ALIGNMENT, 0);
  const decoded = decodeMessage(pooled, Header);
  assert.equal(decoded.body.byteOffset % BODY_ALIGNMENT, 0);
  assert.deepEqual(asFloat32(decoded.body), body);
});

Deno.test("decodeMessage returns a view (no copy) when the data is aligned", () => {
  const data = encodeMessage({ step: 2, kind: "w" }, new Float32Array(8));
  assert.equal(decodeMessage(data, Header).body.buffer, data.buffer);
});

Deno.test("asFloat32 views aligned bytes without copying and rejects odd lengths", () => {
  const floats = new Float32Array([1, 2, 3]);
  const bytes = new Uint8Array(floats.buffer);
  assert.equal(asFloat32(bytes).buffer, floats.buffer);
  assert.throws(() => asFloat32(bytes.subarray(0, 5)), RangeError);
});

Deno.test("decodeMessage rejects malformed messages before allocating", () => {
  const good = encodeMessage({ step: 1, kind: "x" }, new Uint8Array(16));
  const view = (data: Uint8Array) => new DataView(data.buffer, data.byteOffset, data.byteLength);
  assert.throws(() => decodeMessage(good.subarray(0, 10), Header), /at least 16 bytes/);
  assert.throws(() => decodeMessage(good.subarray(0, good.length - 1), Header), /length must be/);
  const longer = new Uint8Array(good.length + 8);
  longer.set(good);
  assert.throws(() => decodeMessage(longer, Header), /length must be/);
  const badMagic = good.slice();
  badMagic[0] = 0x41;
  assert.throws(() => decodeMessage(badMagic, Header), /does not start with/);
  const hugeHeader = good.slice();
  view(hugeHeader).setUint32(4, 0xffffffff, true);
  assert.throws(() => decodeMessage(hugeHeader, Header), /at most 65536 bytes/);
  const hugeBody = good.slice();
  view(hugeBody).setUint32(8, 0xfffffff0, true);
  assert.throws(() => decodeMessage(hugeBody, Header), MessageFormatError);
  const chunk = encodeMessage({ step: 1, kind: "x" }, undefined, MAGIC_CHUNK);
  assert.throws(() => decodeMessage(chunk, Header), /Reassembler/);
});

Deno.test("decodeMessage validates the header with the schema", () => {
  const data = encodeMessage({ step: "one", kind: "x" });
  assert.throws(() => decodeMessage(data, Header), (error: unknown) => {
    assert.ok(error instanceof MessageFormatError);
    assert.ok(error.cause instanceof z.ZodError);
    return true;
  });
  const notJson = encodeMessage({ step: 1, kind: "x" });
  notJson[16] = 0x7b + 1;
  assert.throws(() => decodeMessage(notJson, Header), /not valid UTF-8 JSON/);
});

Deno.test("encodeMessage refuses a header over MAX_HEADER_BYTES", () => {
  assert.throws(() => encodeMessage({ pad: "x".repeat(MAX_HEADER_BYTES) }), RangeError);
});
