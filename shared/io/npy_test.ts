import assert from "node:assert/strict";
import { zipSync } from "npm:fflate@0.8.3";
import { DatasetError } from "./dataset_error.ts";
import { encodeNpy, parseNpy, parseNpz } from "./npy.ts";

function base64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** `numpy.save(f, np.array([[1.5, -2], [3, np.inf]], dtype='<f4'))` with numpy 2.4. */
const NUMPY_F4 = base64(
  "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgIC" +
    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAQEAAAIB/",
);

/** `numpy.savez(f, a=np.array([1, 2, 3], np.uint8), b=np.array([[0.25]], '<f8'))`: zip64 entries. */
const NUMPY_NPZ = base64(
  "UEsDBC0AAAAAAAAAIQAq446x//////////8FABQAYS5ucHkBABAAgwAAAAAAAACDAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdm" +
    "b3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg" +
    "ICAgICAgICAgICAgICAKAQIDUEsDBC0AAAAAAAAAIQApw0+5//////////8FABQAYi5ucHkBABAAiAAAAAAAAACIAAAAAAAAAJNOVU1QWQEAdgB7" +
    "J2Rlc2NyJzogJzxmOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgxLCAxKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAg" +
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAA0D9QSwECLQMtAAAAAAAAACEAKuOOsYMAAACDAAAABQAAAAAAAAAAAAAAgAEA" +
    "AAAAYS5ucHlQSwECLQMtAAAAAAAAACEAKcNPuYgAAACIAAAABQAAAAAAAAAAAAAAgAG6AAAAYi5ucHlQSwUGAAAAAAIAAgBmAAAAeQEAAAAA",
);

/** A `.npy` file with a hand-written header, for dtypes and versions `encodeNpy` does not write. */
function npy(descr: string, shape: string, payload: Uint8Array, version = 1, fortran = "False"): Uint8Array {
  return npyWithHeader(
    `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`,
    payload,
    version,
  );
}

function npyWithHeader(dict: string, payload: Uint8Array, version = 1): Uint8Array {
  const header = new TextEncoder().encode(`${dict}\n`);
  const lengthSize = version === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lengthSize + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, 8 + lengthSize);
  out.set(payload, 8 + lengthSize + header.length);
  return out;
}

function bytesOf(array: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

Deno.test("parseNpy reads a file written by numpy", () => {
  const array = parseNpy(NUMPY_F4, "numpy.npy");
  assert.equal(array.dtype, "float32");
  assert.equal(array.descr, "<f4");
  assert.deepEqual(array.shape, [2, 2]);
  assert.deepEqual(Array.from(array.data), [1.5, -2, 3, Infinity]);
});

Deno.test("parseNpy reads versions 1, 2 and 3 and every supported dtype", () => {
  const f8 = bytesOf(Float64Array.of(0.1, -1e-300));
  for (const version of [1, 2, 3]) {
    const array = parseNpy(npy("<f8", "(2,)", f8, version), `v${version}.npy`);
    assert.equal(array.dtype, "float64");
    assert.deepEqual(Array.from(array.data), [0.1, -1e-300]);
  }
  const cases: [string, Uint8Array, string, number[]][] = [
    ["|u1", Uint8Array.of(0, 255), "uint8", [0, 255]],
    ["|i1", Uint8Array.of(0xff, 1), "int8", [-1, 1]],
    ["<i4", bytesOf(Int32Array.of(-5, 1 << 30)), "int32", [-5, 1 << 30]],
    ["<i8", bytesOf(BigInt64Array.of(-2147483648n, 2147483647n)), "int32", [-2147483648, 2147483647]],
    ["|b1", Uint8Array.of(1, 0), "bool", [1, 0]],
  ];
  for (const [descr, payload, dtype, values] of cases) {
    const array = parseNpy(npy(descr, "(1, 2)", payload), descr);
    assert.equal(array.dtype, dtype);
    assert.deepEqual(array.shape, [1, 2]);
    assert.deepEqual(Array.from(array.data), values);
  }
  assert.deepEqual(parseNpy(npy("<f8", "()", f8.subarray(0, 8)), "scalar").shape, []);
});

Deno.test("parseNpy copies data whose offset is not aligned", () => {
  const file = npy("<f4", "(2,)", bytesOf(Float32Array.of(1, 2)));
  const shifted = new Uint8Array(file.length + 1).subarray(1);
  shifted.set(file);
  assert.deepEqual(Array.from(parseNpy(shifted, "odd").data), [1, 2]);
});

Deno.test("parseNpy rejects int64 values outside the int32 range", () => {
  const payload = bytesOf(BigInt64Array.of(1n, 2n ** 40n));
  assert.throws(
    () => parseNpy(npy("<i8", "(2,)", payload), "big.npy"),
    /big\.npy: int64 element 1 is 1099511627776, outside the int32 range/,
  );
});

Deno.test("parseNpy rejects a bad magic and fortran order", () => {
  assert.throws(() => parseNpy(new TextEncoder().encode("PK\x03\x04 not numpy"), "x.npy"), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.file, "x.npy");
    assert.match(e.message, /magic \\x93NUMPY: found "PK\\u0003\\u0004 n"/);
    return true;
  });
  const fortran = npy("<f4", "(2, 2)", new Uint8Array(16), 1, "True");
  assert.throws(() => parseNpy(fortran, "f.npy"), /f\.npy: fortran_order must be False.*ascontiguousarray/);
});

Deno.test("parseNpy rejects an unsupported dtype, listing the supported ones", () => {
  for (const descr of [">f4", "<u2", "<c8"]) {
    assert.throws(
      () => parseNpy(npy(descr, "(1,)", new Uint8Array(4)), "d.npy"),
      new RegExp(
        `dtype '${descr}' is not supported: supported dtypes are <f4, <f8, \\|u1, \\|i1, <i4, <i8, \\|b1`,
      ),
    );
  }
  const structured = npyWithHeader(
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
    new Uint8Array(4),
  );
  assert.throws(() => parseNpy(structured, "s.npy"), /header must be a dict.*Structured dtypes/);
});

Deno.test("parseNpy rejects payloads that do not match the shape", () => {
  assert.throws(
    () => parseNpy(npy("<f4", "(3, 2)", new Uint8Array(20)), "short.npy"),
    /short\.npy: shape \(3, 2\) of <f4 needs 24 payload bytes: found 20 \(truncated\)/,
  );
  assert.throws(
    () => parseNpy(npy("|u1", "(2,)", new Uint8Array(3)), "long.npy"),
    /needs 2 payload bytes: found 3 \(too long\)/,
  );
  assert.throws(() => parseNpy(npy("|u1", "(2,)", new Uint8Array(2)).subarray(0, 20), "h.npy"), /truncated/);
  assert.throws(
    () => parseNpy(npy("|b1", "(1,)", Uint8Array.of(2)), "b.npy"),
    /bool element 0 must be 0 or 1/,
  );
});

Deno.test("parseNpy with rejectNonFinite names the first NaN or infinity", () => {
  const data = Float32Array.of(0, 1, 2, 3, Number.NaN, Infinity);
  const file = encodeNpy({ data, shape: [2, 3] });
  assert.equal(parseNpy(file, "ok").data.length, 6);
  assert.throws(
    () => parseNpy(file, "nan.npy", { rejectNonFinite: true }),
    /nan\.npy: element 4 \(index \[1, 1\]\) is NaN.*rejectNonFinite: false/,
  );
  assert.throws(() => parseNpy(NUMPY_F4, "inf.npy", { rejectNonFinite: true }), /element 3 .* is Infinity/);
});

Deno.test("encodeNpy writes numpy's layout: 64-byte aligned header, C order", () => {
  const file = encodeNpy({ data: Int32Array.of(1, 2, 3, 4, 5, 6), shape: [3, 2] });
  const headerEnd = file.indexOf(0x0a) + 1;
  assert.equal(headerEnd % 64, 0);
  assert.match(
    new TextDecoder().decode(file.subarray(10, headerEnd)),
    /^\{'descr': '<i4', 'fortran_order': False, 'shape': \(3, 2\), \} *\n$/,
  );
  const back = parseNpy(file, "round-trip");
  assert.deepEqual([back.dtype, back.shape, Array.from(back.data)], ["int32", [3, 2], [1, 2, 3, 4, 5, 6]]);
  assert.match(
    new TextDecoder().decode(encodeNpy({ data: Uint8Array.of(7), shape: [1] })),
    /'shape': \(1,\)/,
  );
  assert.throws(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] }), RangeError);
});

Deno.test("parseNpz reads numpy's zip64 archives and deflated archives", () => {
  const arrays = parseNpz(NUMPY_NPZ, "numpy.npz");
  assert.deepEqual(Object.keys(arrays).sort(), ["a", "b"]);
  assert.deepEqual([arrays.a.dtype, arrays.a.shape, Array.from(arrays.a.data)], ["uint8", [3], [1, 2, 3]]);
  assert.deepEqual([arrays.b.dtype, arrays.b.shape, Array.from(arrays.b.data)], ["float64", [1, 1], [0.25]]);

  const deflated = zipSync({
    "x.npy": encodeNpy({ data: Float32Array.of(1, Number.NaN), shape: [2] }),
  }, { level: 6 });
  assert.deepEqual(parseNpz(deflated, "c.npz").x.shape, [2]);
  assert.throws(() => parseNpz(deflated, "c.npz", { rejectNonFinite: true }), /c\.npz:x\.npy: element 1/);
});

Deno.test("parseNpz names the archive when it is not a zip or an entry is not an array", () => {
  assert.throws(() => parseNpz(NUMPY_NPZ.subarray(0, 100), "cut.npz"), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.file, "cut.npz");
    assert.match(e.message, /cut\.npz as it must be a zip file: found 100 bytes.*corrupt/);
    return true;
  });
  const bad = zipSync({ "x.npy": Uint8Array.of(1, 2, 3) });
  assert.throws(() => parseNpz(bad, "bad.npz"), /bad\.npz:x\.npy: the file must start with the magic/);
});
