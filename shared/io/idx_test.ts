import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { DatasetError } from "./dataset_error.ts";
import { parseIdx, readIdxFile } from "./idx.ts";

/** IDX header (magic, type byte, dims big-endian) followed by `payload`. */
function idx(typeByte: number, shape: number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + payload.length);
  const view = new DataView(out.buffer);
  out[2] = typeByte;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(payload, 4 + 4 * shape.length);
  return out;
}

function bigEndian(values: number[], size: number, set: (v: DataView, o: number, x: number) => void) {
  const bytes = new Uint8Array(values.length * size);
  const view = new DataView(bytes.buffer);
  values.forEach((x, i) => set(view, i * size, x));
  return bytes;
}

Deno.test("parseIdx reads uint8 images as a view with the declared shape", () => {
  const payload = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
  const array = parseIdx(idx(0x08, [2, 3, 4], payload), "images");
  assert.equal(array.dtype, "uint8");
  assert.deepEqual(array.shape, [2, 3, 4]);
  assert.ok(array.data instanceof Uint8Array);
  assert.deepEqual(Array.from(array.data), Array.from(payload));
});

Deno.test("parseIdx decodes big-endian int8, int16, int32, float32 and float64", () => {
  const cases: [number, string, Uint8Array, number[]][] = [
    [0x09, "int8", Uint8Array.from([0xff, 0x7f]), [-1, 127]],
    [0x0b, "int16", bigEndian([-2, 300], 2, (v, o, x) => v.setInt16(o, x, false)), [-2, 300]],
    [0x0c, "int32", bigEndian([-70000, 5], 4, (v, o, x) => v.setInt32(o, x, false)), [-70000, 5]],
    [0x0d, "float32", bigEndian([1.5, -0.25], 4, (v, o, x) => v.setFloat32(o, x, false)), [1.5, -0.25]],
    [0x0e, "float64", bigEndian([0.1, 1e300], 8, (v, o, x) => v.setFloat64(o, x, false)), [0.1, 1e300]],
  ];
  for (const [typeByte, dtype, payload, expected] of cases) {
    const array = parseIdx(idx(typeByte, [2], payload), dtype);
    assert.equal(array.dtype, dtype);
    assert.deepEqual(Array.from(array.data), expected);
  }
});

Deno.test("parseIdx rejects a wrong magic, naming the file and the bytes found", () => {
  const bytes = idx(0x08, [1], Uint8Array.of(1));
  bytes[1] = 0x03;
  assert.throws(() => parseIdx(bytes, "bad-magic.idx"), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.file, "bad-magic.idx");
    assert.match(e.message, /bad-magic\.idx.*00 00 <type> <ndim>.*found 00 03 08 01.*re-download/);
    return true;
  });
});

Deno.test("parseIdx tells a gzip stream from an IDX file", () => {
  const gz = gzipSync(idx(0x08, [1], Uint8Array.of(1)));
  assert.throws(() => parseIdx(gz, "x.gz"), /x\.gz as it is gzip-compressed.*readIdxFile/);
});

Deno.test("parseIdx rejects an unknown type byte, listing the known ones", () => {
  assert.throws(
    () => parseIdx(idx(0x0a, [1], Uint8Array.of(1)), "t.idx"),
    /t\.idx as its type byte must be one of 08 \(uint8\).*found 0a/,
  );
});

Deno.test("parseIdx rejects truncated and overlong payloads and a truncated header", () => {
  const good = idx(0x08, [3, 2], new Uint8Array(6));
  assert.throws(
    () => parseIdx(good.subarray(0, good.length - 1), "short.idx"),
    /short\.idx as shape \[3, 2\] of uint8 needs 6 payload bytes: found 5 \(truncated\)/,
  );
  const long = new Uint8Array(good.length + 2);
  long.set(good);
  assert.throws(() => parseIdx(long, "long.idx"), /needs 6 payload bytes: found 8 \(too long\)/);
  assert.throws(
    () => parseIdx(good.subarray(0, 9), "hdr.idx"),
    /2 dimensions \(12 header bytes\).*found only 9/,
  );
  assert.throws(() => parseIdx(Uint8Array.of(0, 0), "tiny.idx"), /found only 2 bytes/);
});

Deno.test("readIdxFile reads plain and gzip files, and names a truncated gzip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const raw = idx(0x08, [2, 2], Uint8Array.of(1, 2, 3, 4));
    const gz = gzipSync(raw);
    await Deno.writeFile(join(dir, "a.idx"), raw);
    await Deno.writeFile(join(dir, "a.idx.gz"), gz);
    await Deno.writeFile(join(dir, "cut.gz"), gz.subarray(0, gz.length - 6));
    const flipped = gz.slice();
    flipped[gz.length - 8] ^= 0xff; // CRC-32 of the trailer
    await Deno.writeFile(join(dir, "crc.gz"), flipped);
    for (const name of ["a.idx", "a.idx.gz"]) {
      const array = await readIdxFile(join(dir, name));
      assert.deepEqual(array.shape, [2, 2]);
      assert.deepEqual(Array.from(array.data), [1, 2, 3, 4]);
    }
    await assert.rejects(readIdxFile(join(dir, "cut.gz")), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.file, join(dir, "cut.gz"));
      assert.match(e.message, /Cannot decompress .*cut\.gz as it must be a complete gzip stream.*download/);
      return true;
    });
    await assert.rejects(readIdxFile(join(dir, "crc.gz")), /crc\.gz as it must be a complete gzip stream/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIdxFile parses the Debian Fashion-MNIST test images", async () => {
  const array = await readIdxFile("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  assert.equal(array.dtype, "uint8");
  assert.deepEqual(array.shape, [10000, 28, 28]);
  assert.equal(array.data.length, 10000 * 28 * 28);
});
