import assert from "node:assert/strict";
import { layers, Sequential, tf } from "../../mod.ts";
import { Engine } from "./engine.ts";
import { denseSquares } from "./grad_squares.ts";
import type { SliceExchange } from "./layers/mod.ts";
import { resolveMetric } from "./metrics.ts";
import { maxError, randomValues, requireWasmBlas } from "./backends/test_util.ts";

/** The chapter's classifier at a smaller width: Dense/BatchNorm/Dropout, softmax output. */
function model(): Sequential {
  return new Sequential([
    new layers.Dense(48, { activation: "relu", inputShape: [20] }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.3),
    new layers.Dense(24, { activation: "relu" }),
    new layers.BatchNormalization(),
    new layers.Dropout(0.2),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed: 3 });
}

async function slice(backend: string) {
  await tf.setBackend(backend);
  const m = model();
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(m.network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 5 });
  const x = randomValues(16 * 20, 9);
  const y = Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 10);
  const before = tf.memory().numTensors;
  const r = engine.trainSlice(
    m.network.params,
    m.network.state,
    {
      inputs: [{ data: x, shape: [16, 20] }],
      y: { data: y, shape: [16] },
    },
    2,
    0,
  );
  assert.equal(tf.memory().numTensors, before, `${backend}: trainSlice leaks no tensors`);
  return { r, params: m.network.params.length };
}

Deno.test("Engine.trainSlice of a BatchNorm/Dropout model gives the same results on wasm-blas and cpu", async () => {
  await requireWasmBlas();
  const cpu = await slice("cpu");
  const blas = await slice("wasm-blas");
  assert.equal(cpu.r.grads.length, cpu.params);
  assert.equal(blas.r.grads.length, cpu.params);
  assert.ok(
    maxError(blas.r.grads, cpu.r.grads) < 1e-4,
    `gradient error ${maxError(blas.r.grads, cpu.r.grads)}`,
  );
  assert.ok(Math.abs(blas.r.lossSum - cpu.r.lossSum) < 1e-3 * (1 + cpu.r.lossSum));
  assert.equal(blas.r.metricSums[0], cpu.r.metricSums[0]);
  assert.ok(cpu.r.lossSum > 0 && cpu.r.metricSums[0]! >= 0 && cpu.r.metricSums[0]! <= 16);
  assert.deepEqual(blas.r.batchStats.map((s) => [s.layer, s.mean.length]), [
    ["batch_normalization", 48],
    ["batch_normalization_1", 24],
  ]);
  blas.r.batchStats.forEach((s, i) => {
    assert.ok(maxError(s.mean, cpu.r.batchStats[i]!.mean) < 1e-5);
    assert.ok(maxError(s.variance, cpu.r.batchStats[i]!.variance) < 1e-5);
    assert.ok(s.variance.every((v) => v >= 0));
  });
});

/** Stops a slice that needs parts the other slices have not sent yet. */
class NotYet extends Error {}

/**
 * Runs the slices of one step in this thread: a slice runs again from the start until every part
 * it gathers has been sent by all slices (each run gets one exchange further).
 */
function runSliced<T>(slices: number, run: (slice: number, exchange: SliceExchange) => T): T[] {
  const sent: Float32Array[][] = [];
  const results: (T | undefined)[] = Array(slices).fill(undefined);
  for (let round = 0; round < 50; round++) {
    for (let k = 0; k < slices; k++) {
      if (results[k] !== undefined) continue;
      let call = 0;
      const exchange: SliceExchange = {
        gather(part) {
          const parts = (sent[call] ??= []);
          parts[k] = part;
          const all = Array.from({ length: slices }, (_, j) => parts[j]);
          if (all.some((p) => p === undefined)) throw new NotYet();
          call++;
          return all as Float32Array[];
        },
      };
      try {
        results[k] = run(k, exchange);
      } catch (error) {
        if (!(error instanceof NotYet)) throw error;
      }
    }
    if (results.every((r) => r !== undefined)) return results as T[];
  }
  throw new Error("The slices did not finish in 50 rounds");
}

Deno.test("Engine.trainSlice with checkFinite says whether its gradient is finite, on wasm-blas and cpu", async () => {
  await requireWasmBlas();
  for (const backend of ["wasm-blas", "cpu"]) {
    await tf.setBackend(backend);
    const m = model();
    const loss = "sparse_categorical_crossentropy" as const;
    const engine = new Engine(m.network, { loss, metrics: [], seed: 5 });
    const y = { data: Float32Array.from({ length: 16 }, (_, i) => i % 10), shape: [16] };
    const run = (x: Float32Array, checkFinite?: boolean) =>
      engine.trainSlice(
        m.network.params,
        m.network.state,
        { inputs: [{ data: x, shape: [16, 20] }], y },
        2,
        0,
        {
          ...(checkFinite === undefined ? {} : { checkFinite }),
        },
      );
    const x = randomValues(16 * 20, 9);
    assert.equal(run(x).gradsFinite, undefined, `${backend}: not checked unless asked`);
    assert.equal(run(x, true).gradsFinite, true, backend);
    // One bad value in one row: that row's activations, and so the gradient, carry it.
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const broken = x.slice();
      broken[5 * 20 + 3] = bad;
      const r = run(broken, true);
      assert.equal(r.gradsFinite, false, `${backend}: an input of ${bad}`);
      assert.ok(
        r.grads.some((g) => !Number.isFinite(g)),
        `${backend}: the gradient it describes holds the ${bad}`,
      );
    }
  }
});

Deno.test("Engine.trainSlice over uneven slices of a BatchNorm/Dropout model equals the whole batch", async () => {
  await tf.setBackend("cpu");
  const m = model();
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(m.network, { loss, metrics: [resolveMetric("accuracy", loss, 10)], seed: 5 });
  const rows = 13, width = 20;
  const x = randomValues(rows * width, 4);
  const y = Float32Array.from({ length: rows }, (_, i) => (i * 3) % 10);
  const batch = (start: number, end: number) => ({
    inputs: [{ data: x.slice(start * width, end * width), shape: [end - start, width] }],
    y: { data: y.slice(start, end), shape: [end - start] },
  });
  const { params, state } = m.network;
  const whole = engine.trainSlice(params, state, batch(0, rows), 4, 0);
  const bounds: [number, number][] = [[0, 5], [5, 6], [6, 13]];
  const before = tf.memory().numTensors;
  const parts = runSliced(
    bounds.length,
    (k, exchange) => engine.trainSlice(params, state, batch(...bounds[k]!), 4, bounds[k]![0], { exchange }),
  );
  assert.equal(tf.memory().numTensors, before, "slices stopped half-way leak no tensors");
  const grads = new Float32Array(whole.grads.length);
  parts.forEach((p) => p.grads.forEach((g, i) => grads[i]! += (g * p.count) / rows));
  assert.ok(maxError(grads, whole.grads) < 1e-5, `gradient error ${maxError(grads, whole.grads)}`);
  assert.ok(maxError(whole.grads, new Float32Array(whole.grads.length)) > 1e-3, "non-trivial gradient");
  const lossSum = parts.reduce((n, p) => n + p.lossSum, 0);
  assert.ok(Math.abs(lossSum - whole.lossSum) < 1e-4, `loss sums ${lossSum} vs ${whole.lossSum}`);
});

Deno.test("an Embedding's gradient comes with the per-row sum of its slices' squares (Keras's IndexedSlices)", () => {
  const m = new Sequential([
    new layers.Embedding(4, 2, { inputShape: [3] }),
    new layers.GlobalAveragePooling1D(),
    new layers.Dense(1, { useBias: false }),
  ], { seed: 2 });
  const net = m.network;
  const ids = [[1, 1, 2], [2, 0, 1]];
  const y = [0.5, -1];
  const engine = new Engine(net, { loss: "mean_squared_error", metrics: [], seed: 1 });
  const before = tf.memory().numTensors;
  const r = engine.trainSlice(
    net.params,
    net.state,
    {
      inputs: [{ data: Float32Array.from(ids.flat()), shape: [2, 3] }],
      y: { data: Float32Array.from(y), shape: [2, 1] },
    },
    0,
    0,
  );
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  // By hand: out = mean_t E[id_t]·K; each looked-up slice's gradient is (2/N)(out - y)·Kᵀ / T.
  const [emb, kernel] = net.paramLayout;
  const E = (row: number, c: number) => net.params[emb!.offset + row * 2 + c]!;
  const K = (c: number) => net.params[kernel!.offset + c]!;
  const grad = new Float64Array(8), squares = new Float64Array(8);
  ids.forEach((row, n) => {
    const out = [0, 1].reduce((s, c) => s + row.reduce((a, id) => a + E(id, c), 0) / 3 * K(c), 0);
    for (const id of row) {
      for (const c of [0, 1]) {
        const slice = (2 / 2) * (out - y[n]!) * K(c) / 3;
        grad[id * 2 + c] += slice;
        squares[id * 2 + c] += slice * slice;
      }
    }
  });
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) =>
    Array.from(a).every((v, i) => Math.abs(v - b[i]!) <= 1e-6);
  assert.ok(close(r.grads.subarray(emb!.offset, emb!.offset + 8), grad), "gradient");
  assert.deepEqual(r.gradSquares?.map((s) => s.offset), [emb!.offset]);
  // Only the looked-up rows (row 3 is not) are held: 3 rows of 2, not the table's 8 values.
  const sq = r.gradSquares![0]!;
  assert.deepEqual([sq.size, sq.rowSize, [...sq.rows]], [8, 2, [0, 1, 2]]);
  assert.equal(sq.values.length, 6);
  assert.ok(close(denseSquares(sq), squares), `squares ${denseSquares(sq)} vs ${squares}`);
  // Row 1 appears 3 times: its squares are not its gradient squared.
  assert.ok(Math.abs(squares[2]! - grad[2]! * grad[2]!) > 1e-6);
  // Evaluation records nothing.
  assert.equal(
    engine.evaluate(net.params, net.state, {
      inputs: [{ data: Float32Array.from(ids.flat()), shape: [2, 3] }],
      y: { data: Float32Array.from(y), shape: [2, 1] },
    }).count,
    2,
  );
});
