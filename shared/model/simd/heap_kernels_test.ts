import assert from "node:assert/strict";
import { assembleKernels } from "../../../tools/build_kernels.ts";
import { HEAP_KERNELS_WASM_BASE64 } from "./heap_kernels_wasm.ts";
import { heapKernelsFor } from "./heap_kernels.ts";
import { initBackend, tf } from "../mod.ts";
import { wasmHeapOf, wasmMemoryOf } from "../backends/wasm_internals.ts";

Deno.test("heap_kernels_wasm.ts holds exactly what heap_kernels.wat assembles to", async () => {
  assert.deepEqual(
    Uint8Array.fromBase64(HEAP_KERNELS_WASM_BASE64),
    await assembleKernels("heap"),
    "heap_kernels.wat changed: run `deno task kernels`",
  );
});

Deno.test("the heap kernels bind the wasm backend's memory, once per memory", async () => {
  const backend = await initBackend("wasm-blas");
  assert.equal(backend.name, "wasm-blas");
  const memory = wasmMemoryOf(wasmHeapOf(tf.backend())!);
  assert.ok(memory, "the wasm backend exposes its memory");
  const kernels = heapKernelsFor(memory);
  assert.ok(kernels);
  assert.equal(heapKernelsFor(memory), kernels);
  // A shared memory (the threaded build's) cannot be imported: the callers keep their JavaScript.
  assert.equal(heapKernelsFor(new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true })), undefined);
});

Deno.test("max_pool_grad passes no gradient through a window of only NaN or -Infinity", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = heapKernelsFor(memory)!;
  const f = new Float32Array(memory.buffer);
  // One image 2x2, 5 channels (one SIMD group and a tail), one 2x2 window: x at 0, dy at 64, dx at 128.
  const x = [
    [Number.NaN, -Infinity, 1, 2, Number.NaN],
    [Number.NaN, -Infinity, 3, 2, -Infinity],
    [Number.NaN, -Infinity, 3, 1, Number.NaN],
    [Number.NaN, -Infinity, 0, 2, -Infinity],
  ].flat();
  f.set(x, 0);
  f.set([10, 20, 30, 40, 50], 64);
  f.fill(7, 128, 148);
  kernels.max_pool_grad(0, 256, 512, 1, 2, 2, 5, 1, 1, 2, 2, 2, 2, 0, 0);
  const dx = Array.from(f.subarray(128, 148));
  // Channel 2: the first 3 (pixel 1); channel 3: the first 2 (pixel 0); channels 0, 1, 4: none.
  const expected = new Array(20).fill(0);
  expected[1 * 5 + 2] = 30;
  expected[0 * 5 + 3] = 40;
  assert.deepEqual(dx, expected);
});

Deno.test("nonfinite_probe finds a NaN or an infinity anywhere: four-vector steps, single vectors and the tail", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = heapKernelsFor(memory)!;
  const f = new Float32Array(memory.buffer);
  // Lengths around every step's boundary (16 floats a four-vector step, 4 a vector), from an odd offset.
  for (const length of [0, 1, 3, 4, 5, 15, 16, 17, 31, 35, 64, 67, 1001]) {
    const at = 8;
    const values = Float32Array.from({ length }, (_, i) => (i % 7) * 1e30 - 3e30 + i);
    f.set(values, at);
    assert.equal(kernels.nonfinite_probe(at * 4, length), 0, `finite values of length ${length}`);
    for (const i of new Set([0, length >> 1, length - 1].filter((i) => i >= 0 && i < length))) {
      for (const bad of [Number.NaN, Infinity, -Infinity]) {
        f[at + i] = bad;
        assert.ok(Number.isNaN(kernels.nonfinite_probe(at * 4, length)), `${bad} at ${i} of ${length}`);
        f[at + i] = values[i]!;
      }
    }
    // A bad value right after the range is not the range's.
    f[at + length] = Number.NaN;
    assert.equal(kernels.nonfinite_probe(at * 4, length), 0, `past the end of ${length}`);
  }
});

Deno.test("column_sums rounds double-precision column sums once, whatever the width", () => {
  const memory = new WebAssembly.Memory({ initial: 4 });
  const kernels = heapKernelsFor(memory)!;
  const f = new Float32Array(memory.buffer);
  let s = 11;
  for (const [rows, width] of [[1, 1], [3, 4], [50, 7], [129, 64], [2, 3]]) {
    const x = Float32Array.from(
      { length: rows * width },
      () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5,
    );
    f.set(x, 0);
    const acc = 4 * x.length + 64, out = acc + 8 * width;
    kernels.column_sums(0, rows, width, acc, out);
    const expected = new Float32Array(width);
    for (let j = 0; j < width; j++) {
      let sum = 0;
      for (let i = 0; i < rows; i++) sum += x[i * width + j]!;
      expected[j] = sum;
    }
    assert.deepEqual(f.slice(out / 4, out / 4 + width), expected, `${rows}x${width}`);
  }
});

Deno.test("bias_relu adds the bias along the last axis and applies max(x, 0), tails included", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = heapKernelsFor(memory)!;
  const f = new Float32Array(memory.buffer);
  for (const [rows, cols] of [[3, 5], [2, 8], [1, 3]]) {
    const x = Float32Array.from({ length: rows * cols }, (_, i) => (i % 7) - 3.5);
    x[1] = Number.NaN;
    const bias = Float32Array.from({ length: cols }, (_, j) => j * 0.25 - 0.5);
    for (const [withBias, relu] of [[true, 1], [true, 0], [false, 1]] as const) {
      f.set(x, 0);
      f.set(bias, 1024);
      kernels.bias_relu(0, withBias ? 4096 : -1, rows, cols, relu);
      const expected = Array.from(x, (v, i) => {
        const b = withBias ? v + bias[i % cols]! : v;
        return relu ? (Number.isNaN(b) ? b : Math.max(b, 0)) : b;
      });
      assert.deepEqual(Array.from(f.subarray(0, rows * cols)), Array.from(Float32Array.from(expected)));
    }
  }
});
