import assert from "node:assert/strict";
import { decodeF32, encodeF32 } from "./float_encoding.ts";

function randomFloats(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 2 ** 32) - 0.5) * 10 ** ((i % 13) - 6);
  }
  return out;
}

Deno.test("f32 encoding is exact and shares bytes", () => {
  const values = randomFloats(1000, 1);
  const bytes = encodeF32(values, "f32");
  assert.equal(bytes.buffer, values.buffer);
  assert.deepEqual(decodeF32(bytes, "f32"), values);
  const out = new Float32Array(1000);
  assert.equal(decodeF32(bytes, "f32", out), out);
  assert.deepEqual(out, values);
});

Deno.test("bf16 encoding halves the bytes with relative error at most 2^-8", () => {
  const values = randomFloats(100_000, 2);
  const bytes = encodeF32(values, "bf16");
  assert.equal(bytes.byteLength, values.length * 2);
  const decoded = decodeF32(bytes, "bf16");
  let worst = 0;
  for (let i = 0; i < values.length; i++) {
    worst = Math.max(worst, Math.abs(decoded[i]! - values[i]!) / Math.abs(values[i]!));
  }
  assert.ok(worst <= 2 ** -8, `worst relative error ${worst}`);
  assert.ok(worst > 2 ** -10, `bf16 should lose precision: worst ${worst}`);
});

Deno.test("bf16 rounds to nearest even and keeps NaN, Infinity, signed zero", () => {
  const bits = new Uint32Array([
    0x3f808000, // tie, lower half even -> 0x3f80
    0x3f818000, // tie, lower half odd -> 0x3f82
    0x3f808001, // above tie -> 0x3f81
    0x7f7fffff, // max float32 -> rounds to Infinity
    0x7fc00001, // quiet NaN
    0x7f800001, // signalling NaN whose payload is in the low bits only
    0xff800000, // -Infinity
    0x80000000, // -0
  ]);
  const decoded = decodeF32(encodeF32(new Float32Array(bits.buffer), "bf16"), "bf16");
  const out = new Uint32Array(decoded.buffer);
  assert.equal(out[0], 0x3f800000);
  assert.equal(out[1], 0x3f820000);
  assert.equal(out[2], 0x3f810000);
  assert.equal(decoded[3], Infinity);
  assert.ok(Number.isNaN(decoded[4]));
  assert.ok(Number.isNaN(decoded[5]));
  assert.equal(decoded[6], -Infinity);
  assert.ok(Object.is(decoded[7], -0));
});

Deno.test("decodeF32 handles unaligned input and checks lengths", () => {
  const values = new Float32Array([1, -2.5, 3e-3]);
  for (const encoding of ["f32", "bf16"] as const) {
    const bytes = encodeF32(values, encoding);
    const backing = new Uint8Array(bytes.length + 1);
    backing.set(bytes, 1);
    const decoded = decodeF32(backing.subarray(1), encoding);
    assert.deepEqual(decoded, decodeF32(bytes.slice(), encoding));
    assert.throws(() => decodeF32(bytes.subarray(0, bytes.length - 1), encoding), RangeError);
    assert.throws(() => decodeF32(bytes, encoding, new Float32Array(2)), /output of length 2/);
  }
  assert.throws(() => encodeF32(values, "f16" as "f32"), /must be "f32" or "bf16"/);
});
