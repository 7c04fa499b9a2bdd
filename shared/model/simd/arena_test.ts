import assert from "node:assert/strict";
import { assembleKernels } from "../../../tools/build_kernels.ts";
import { KernelArena } from "./arena.ts";
import { KERNELS_WASM_BASE64 } from "./kernels_wasm.ts";

const f = Math.fround;

/** Keras's Adam in f32, one rounding per operation, as the kernel computes it. */
function adamReference(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: { alpha: number; b1: number; b2: number; epsilon: number },
): void {
  const [alpha, b1, b2, eps] = [f(s.alpha), f(s.b1), f(s.b2), f(s.epsilon)];
  for (let i = 0; i < w.length; i++) {
    m[i] = f(m[i]! + f(f(g[i]! - m[i]!) * b1));
    v[i] = f(v[i]! + f(f(f(g[i]! * g[i]!) - v[i]!) * b2));
    w[i] = f(w[i]! - f(f(m[i]! * alpha) / f(f(Math.sqrt(v[i]!)) + eps)));
  }
}

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

Deno.test("kernels_wasm.ts holds exactly what kernels.wat assembles to", async () => {
  const assembled = await assembleKernels();
  assert.deepEqual(
    Uint8Array.fromBase64(KERNELS_WASM_BASE64),
    assembled,
    "kernels.wat changed: run `deno task kernels`",
  );
});

Deno.test("The Adam kernel equals Keras's f32 formula bit for bit, tails included", () => {
  for (const n of [1, 3, 4, 5, 17, 1030]) {
    const arena = new KernelArena(n, 4);
    const [w, g, m, v] = [arena.alloc(n), arena.alloc(n), arena.alloc(n), arena.alloc(n)];
    w.set(random(n, 1));
    const [rw, rm, rv] = [w.slice(), m.slice(), v.slice()];
    for (let t = 1; t <= 3; t++) {
      g.set(random(n, 10 + t));
      const step = {
        alpha: 0.001 * Math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t),
        b1: 0.1,
        b2: 0.001,
        epsilon: 1e-7,
      };
      arena.adam(w, g, m, v, step);
      adamReference(rw, g, rm, rv, step);
    }
    assert.deepEqual(w, rw, `weights after 3 steps, n=${n}`);
    assert.deepEqual(m, rm, `first moments, n=${n}`);
    assert.deepEqual(v, rv, `second moments, n=${n}`);
  }
});

Deno.test("probe is zero for finite arrays and NaN for a NaN or infinity at any position", () => {
  const n = 23;
  const arena = new KernelArena(n, 1);
  const x = arena.alloc(n);
  x.set(random(n, 3));
  x[5] = 3e38;
  assert.equal(arena.probe(x), 0);
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const at of [0, 3, 4, 19, 20, 22]) {
      const saved = x[at]!;
      x[at] = bad;
      assert.ok(Number.isNaN(arena.probe(x)), `${bad} at ${at}`);
      x[at] = saved;
    }
  }
});

Deno.test("An arena refuses arrays beyond its capacity and operands from elsewhere, naming the fix", () => {
  const arena = new KernelArena(10, 2);
  const a = arena.alloc(10);
  arena.alloc(10);
  assert.throws(
    () => arena.alloc(1),
    /Cannot allocate 1 floats in a kernel arena .* create the arena with room/,
  );
  assert.throws(() => arena.probe(new Float32Array(10)), /outside its arena .* alloc\(10\)/);
  assert.throws(
    () => arena.adam(a, a, a, a.subarray(1), { alpha: 1, b1: 0.1, b2: 0.1, epsilon: 1e-7 }),
    /of another length/,
  );
  assert.ok(arena.owns(a));
  assert.throws(() => new KernelArena(-1, 1), /length and arrays must be integers >= 0: received -1, 1/);
  // Refused before anything is allocated, with the most each array could hold.
  assert.throws(
    () => new KernelArena(300_000_000, 4),
    /Cannot hold 4 arrays of 300000000 floats \(4\.47 GiB\) in one WebAssembly memory, which holds 4 GiB at most: 4 arrays fit up to about 268435440 floats each/,
  );
});
