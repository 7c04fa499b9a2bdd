import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";
import { fillRowMask, rowState } from "./dropout.ts";
import { KernelArena } from "../simd/arena.ts";
import { hash32, unitFloat } from "../random.ts";

function context(training: boolean, over: Partial<CallContext> = {}): CallContext {
  return { training, seed: 42, step: 3, rowOffset: 0, batchStats: [], logits: new Map(), ...over };
}

function dropout(rate: number, cols: number, name = "dropout"): InstanceType<typeof layers.Dropout> {
  const d = new layers.Dropout(rate, { name });
  d.apply(new Input({ shape: [cols] }));
  return d;
}

/** The mask a Dropout layer applies: its output on a tensor of ones. */
function mask(
  d: InstanceType<typeof layers.Dropout>,
  rows: number,
  cols: number,
  ctx: CallContext,
): Float32Array {
  return d.call([tf.ones([rows, cols])], [], ctx).dataSync() as Float32Array;
}

Deno.test("Dropout is the identity when not training", () => {
  const d = dropout(0.5, 3);
  const x = tf.tensor2d([[1, -2, 3], [4, 5, -6]]);
  assert.deepEqual(Array.from(d.call([x], [], context(false)).dataSync()), [1, -2, 3, 4, 5, -6]);
});

Deno.test("Dropout in training zeroes about `rate` of the values and scales the rest by 1/(1-rate)", () => {
  const rate = 0.25;
  const m = mask(dropout(rate, 100), 64, 100, context(true));
  const scale = Math.fround(1 / (1 - rate));
  let zeros = 0;
  for (const v of m) {
    if (v === 0) zeros++;
    else assert.equal(v, scale);
  }
  // 6,400 draws: the standard deviation of the fraction is 0.0054.
  assert.ok(Math.abs(zeros / m.length - rate) < 0.02, `dropped fraction ${zeros / m.length}`);
  // Each row draws its own mask.
  assert.notDeepEqual(Array.from(m.subarray(0, 100)), Array.from(m.subarray(100, 200)));
});

Deno.test("Dropout masks depend on (seed, step, global row), not on how the batch is split", () => {
  const d = dropout(0.5, 16);
  const whole = mask(d, 8, 16, context(true));
  const first = mask(d, 4, 16, context(true, { rowOffset: 0 }));
  const second = mask(d, 4, 16, context(true, { rowOffset: 4 }));
  assert.deepEqual(Array.from(whole), [...first, ...second]);
  // Same coordinates, same mask; another step or seed, another mask.
  assert.deepEqual(Array.from(mask(d, 8, 16, context(true))), Array.from(whole));
  assert.notDeepEqual(Array.from(mask(d, 8, 16, context(true, { step: 4 }))), Array.from(whole));
  assert.notDeepEqual(Array.from(mask(d, 8, 16, context(true, { seed: 43 }))), Array.from(whole));
  // Two Dropout layers in one model draw different masks.
  assert.notDeepEqual(
    Array.from(mask(dropout(0.5, 16, "dropout_1"), 8, 16, context(true))),
    Array.from(whole),
  );
});

Deno.test("Dropout keeps the shape of rank-3 inputs", () => {
  const d = new layers.Dropout(0.5, { name: "dropout" });
  assert.deepEqual(d.apply(new Input({ shape: [2, 3] })).shape, [2, 3]);
  const y = d.call([tf.ones([4, 2, 3])], [], context(true));
  assert.deepEqual(y.shape, [4, 2, 3]);
  assert.ok(Array.from(y.dataSync()).every((v) => v === 0 || v === 2));
});

Deno.test("Dropout rejects a rate outside [0, 1) with the value", () => {
  assert.throws(() => new layers.Dropout(1), /rate must be in \[0, 1\): received rate=1/);
  assert.throws(() => new layers.Dropout(-0.1), /received rate=-0.1/);
  assert.deepEqual(new layers.Dropout(0.3).getConfig().rate, 0.3);
});

Deno.test("fillRowMask equals unitFloat(hash32(rowSeed, column)) < keep for every column", () => {
  for (const rowSeed of [0, 1, 0x9e3779b9, 0xffffffff, 123456789]) {
    const mask = new Float32Array(300);
    fillRowMask(mask, 0, 300, rowSeed, 0.7, 2);
    for (let c = 0; c < 300; c++) {
      assert.equal(mask[c], unitFloat(hash32(rowSeed, c)) < 0.7 ? 2 : 0, `rowSeed ${rowSeed}, column ${c}`);
    }
  }
});

Deno.test("The SIMD mask kernel equals fillRowMask for any row count, odd column counts and rates", () => {
  for (const rows of [1, 3]) {
    for (const cols of [1, 3, 4, 5, 17, 130]) {
      for (const keep of [0.1, 0.5, 0.7, 0.999]) {
        const arena = new KernelArena(rows * cols + rows, 2);
        const mask = arena.alloc(rows * cols), seeds = arena.allocInt32(rows);
        const expected = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          const rowSeed = hash32(7, 11, r, 0x9e3779b9);
          seeds[r] = rowState(rowSeed);
          fillRowMask(expected, r * cols, cols, rowSeed, keep, 1 / keep);
        }
        arena.dropoutMask(mask, seeds, Math.ceil(keep * 4294967296), 1 / keep);
        assert.deepEqual(mask, expected, `${rows}x${cols}, keep ${keep}`);
      }
    }
  }
});
