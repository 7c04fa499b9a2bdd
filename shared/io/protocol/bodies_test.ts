import assert from "node:assert/strict";
import {
  decodeDataset,
  decodeGathered,
  decodeIndices,
  decodePredict,
  decodeTrainReply,
  decodeWeights,
  encodeDataset,
  encodeGathered,
  encodeIndices,
  encodeTrainReply,
  encodeWeights,
} from "./bodies.ts";
import { DataFrame, WeightsHeader, WorkReply } from "./messages.ts";
import { decodeMessage, encodeMessage } from "../nats/codec.ts";
import { layers, Sequential } from "../../../mod.ts";
import { Engine } from "../../model/mod.ts";

/** Encodes and decodes a whole message, as either transport does. */
function wire<H extends object>(header: H, body: Parameters<typeof encodeMessage>[1], schema = WorkReply) {
  return decodeMessage(encodeMessage(header, body), schema);
}

const result = {
  count: 3,
  grads: Float32Array.from([0.5, -1, 2, 1e-8, 3]),
  lossSum: 1.25,
  metricSums: [2],
  regLoss: 0.01,
  batchStats: [{ layer: "bn", mean: Float32Array.from([1, 2]), variance: Float32Array.from([3, 4]) }],
};
const base = { kind: "train" as const, job: "j", worker: "w0", step: 4, computeMs: 1 };

Deno.test("a train reply round-trips in f32 exactly and in bf16 within bf16 rounding", () => {
  for (const encoding of ["f32", "bf16"] as const) {
    const { header, body } = encodeTrainReply({ ...base, encoding }, result);
    const m = wire(header, body);
    assert.equal(m.header.kind, "train");
    const decoded = decodeTrainReply(m.header as typeof header, m.body, 5);
    assert.ok(typeof decoded !== "string", String(decoded));
    assert.equal(decoded.count, 3);
    assert.deepEqual(decoded.batchStats, result.batchStats);
    decoded.grads.forEach((g, i) =>
      assert.ok(Math.abs(g - result.grads[i]!) <= Math.abs(result.grads[i]!) / 128)
    );
    if (encoding === "f32") assert.deepEqual(decoded.grads, result.grads);
  }
});

/** A slice of a model of 7 parameters, with a table of 3 rows of 2 at offset 1. */
const withTable = { ...result, grads: Float32Array.from([0.5, 1, 0, 3, 4, 5, 6]) };
/** That table's squares: rows 0 and 2 looked up. */
const squares = {
  offset: 1,
  size: 6,
  rowSize: 2,
  rows: Int32Array.of(0, 2),
  values: Float32Array.from([0.25, 4, 1e-30, 7]),
};

Deno.test("a train reply carries sparse gradients' squares, only their rows, after the BatchNorm statistics", () => {
  const withSquares = { ...withTable, gradSquares: [squares] };
  const { header, body } = encodeTrainReply({ ...base, encoding: "f32" }, withSquares);
  assert.deepEqual(header.gradSquares, [{ offset: 1, size: 6, rowSize: 2, rows: 2 }]);
  const m = wire(header, body);
  const decoded = decodeTrainReply(m.header as typeof header, m.body, 7);
  assert.ok(typeof decoded !== "string", String(decoded));
  assert.deepEqual(decoded.batchStats, result.batchStats);
  assert.deepEqual(decoded.gradSquares, withSquares.gradSquares);
  // 2 row ids and 4 squares after the 7 gradient values, their padding and 4 statistics.
  assert.equal(m.body.length, 32 + 4 * 4 + 4 * (2 + 4));
  // A body one square short is refused.
  assert.match(String(decodeTrainReply(header, m.body.subarray(0, m.body.length - 4), 7)), /body bytes/);
  // A reply that looked nothing up in the table carries its layout and no rows.
  const none = { ...squares, rows: new Int32Array(0), values: new Float32Array(0) };
  const empty = encodeTrainReply({ ...base, encoding: "f32" }, { ...withTable, gradSquares: [none] });
  const decodedEmpty = decodeTrainReply(empty.header, wire(empty.header, empty.body).body, 7);
  assert.ok(typeof decodedEmpty !== "string", String(decodedEmpty));
  assert.deepEqual(decodedEmpty.gradSquares, [none]);
});

Deno.test("a train reply whose squares name a row outside their table, out of order or past the model is refused", () => {
  const reply = (sq: typeof squares, paramCount = 7) => {
    const { header, body } = encodeTrainReply({ ...base, encoding: "f32" }, {
      ...withTable,
      gradSquares: [sq],
    });
    const m = wire(header, body);
    return decodeTrainReply(m.header as typeof header, m.body, paramCount);
  };
  assert.equal(
    reply({ ...squares, rows: Int32Array.of(0, 3) }),
    "its squares at offset 1: row 3 lies outside the 3 rows of the table at offset 1",
  );
  assert.equal(
    reply({ ...squares, rows: Int32Array.of(-1, 2) }),
    "its squares at offset 1: row -1 lies outside the 3 rows of the table at offset 1",
  );
  assert.equal(
    reply({ ...squares, rows: Int32Array.of(2, 0) }),
    "its squares at offset 1: row 0 follows row 2 (rows must ascend, each once)",
  );
  assert.equal(
    reply({ ...squares, rows: Int32Array.of(2, 2) }),
    "its squares at offset 1: row 2 follows row 2 (rows must ascend, each once)",
  );
  assert.equal(
    reply({ ...squares, size: 5 }),
    "its squares at offset 1: table size 5 is not a multiple of its row size 2",
  );
  const shorter = { ...squares, offset: 2 };
  assert.equal(reply(shorter), "its squares at offset 2 cover 6 values, past the model's 7");
});

Deno.test("a train reply of the wrong length is refused with both lengths", () => {
  const { header, body } = encodeTrainReply(
    { ...base, encoding: "f32" },
    result,
    result.grads.subarray(0, 4),
  );
  const m = wire(header, body);
  assert.equal(
    decodeTrainReply(m.header as typeof header, m.body, 5),
    "its gradient has 4 values (32 body bytes), the model has 5",
  );
  const short = decodeTrainReply(header, new Uint8Array(8), 4);
  assert.match(String(short), /8 body bytes/);
});

Deno.test("weights, indices, predictions and gathered parts round-trip; bad lengths throw", () => {
  const params = Float32Array.from([1, 2, 3]), state = Float32Array.from([4]);
  const w = encodeWeights("j", 7, params, state);
  const m = wire(w.header, w.body, WeightsHeader as never);
  const decoded = decodeWeights(w.header, m.body);
  assert.deepEqual([decoded.version, [...decoded.params], [...decoded.state]], [7, [1, 2, 3], [4]]);
  assert.throws(
    () => decodeWeights({ ...w.header, stateLength: 2 }, m.body),
    /holds 4 floats: the header says 5/,
  );
  const indices = Int32Array.from([5, 0, 9]);
  assert.deepEqual(decodeIndices(new Uint8Array((encodeIndices(indices) as Int32Array).buffer)), indices);
  assert.throws(() => decodeIndices(new Uint8Array(5)), /multiple of 4/);
  const out = Float32Array.from([0.25, 0.75]);
  assert.deepEqual(
    decodePredict({ kind: "predict", job: "j", worker: "w", length: 2 }, new Uint8Array(out.buffer)),
    out,
  );
  assert.match(
    String(decodePredict({ kind: "predict", job: "j", worker: "w", length: 3 }, new Uint8Array(8))),
    /8 bytes for 3/,
  );
  const parts = [Float32Array.from([1, 2]), Float32Array.from([3, 4]), Float32Array.from([5, 6])];
  assert.deepEqual(decodeGathered(new Uint8Array(encodeGathered(parts).buffer), 3), parts);
  assert.throws(() => encodeGathered([parts[0]!, Float32Array.from([1])]), /different models/);
  assert.throws(() => decodeGathered(new Uint8Array(12), 2), /3 gathered values into 2/);
});

Deno.test("a dataset round-trips with its shapes, and its hash follows content and shapes", async () => {
  const x = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] };
  const y = { data: Float32Array.from([0, 1, 0]), shape: [3] };
  const shipped = await encodeDataset({ inputs: [x], y, length: 3 });
  const back = decodeDataset(shipped.body, shipped.inputs, shipped.y);
  assert.deepEqual(back.inputs[0], x);
  assert.deepEqual(back.y, y);
  assert.equal(back.length, 3);
  const reshaped = await encodeDataset({ inputs: [{ ...x, shape: [2, 3] }], y: null, length: 2 });
  assert.notEqual(reshaped.hash, shipped.hash);
  assert.throws(
    () => decodeDataset(shipped.body, [[3, 4]], null),
    /need 48 bytes: the body holds 36/,
  );
  assert.throws(
    () => decodeDataset(shipped.body.subarray(4), shipped.inputs, shipped.y),
    /need 36 bytes: the body holds 32/,
  );
  assert.throws(() => decodeDataset(shipped.body, [[3, 2]], [1, 3]), /3 and 1 rows|1 and 3 rows/);
});

Deno.test("a dataset of bytes ships as bytes: a quarter of the body, the same values back", async () => {
  const pixels = Uint8Array.from({ length: 5 * 7 }, (_, i) => (i * 37) & 255);
  const y = { data: Float32Array.from([0, 1, 2, 3, 4]), shape: [5] };
  const bytes = await encodeDataset({ inputs: [{ data: pixels, shape: [5, 7] }], y, length: 5 });
  const floats = await encodeDataset({
    inputs: [{ data: Float32Array.from(pixels), shape: [5, 7] }],
    y,
    length: 5,
  });
  assert.deepEqual(bytes.dtypes, ["uint8", "float32"]);
  assert.deepEqual(floats.dtypes, ["float32", "float32"]);
  assert.equal(bytes.body.byteLength, 36 + 20, "35 bytes padded to 36, then 5 floats");
  assert.equal(floats.body.byteLength, 140 + 20);
  assert.notEqual(bytes.hash, floats.hash, "the element type is part of the content");
  const back = decodeDataset(bytes.body, bytes.inputs, bytes.y, bytes.dtypes);
  assert.ok(back.inputs[0]!.data instanceof Uint8Array);
  assert.deepEqual(back.inputs[0]!.data, pixels);
  assert.deepEqual(back.y, y);
});

Deno.test("data-plane frame headers parse, and a frame of another kind or shape is refused", () => {
  assert.equal(DataFrame.parse({ t: "leave", reason: "dropped", ended: false }).t, "leave");
  assert.equal(DataFrame.safeParse({ t: "req", id: -1, req: { kind: "leave", job: "j" } }).success, false);
  assert.equal(DataFrame.safeParse({ t: "nope" }).success, false);
});

Deno.test("a train reply's squares grow with the rows a slice looked up, not with the vocabulary", () => {
  const ids = Float32Array.from([3, 7, 3, 999, 0, 7, 7, 42, 3, 500]);
  const squareBytes = (vocab: number) => {
    const model = new Sequential([
      new layers.Embedding(vocab, 8, { inputShape: [5] }),
      new layers.GlobalAveragePooling1D(),
      new layers.Dense(2, { activation: "softmax" }),
    ], { seed: 1 });
    const net = model.network;
    const engine = new Engine(net, { loss: "sparse_categorical_crossentropy", metrics: [], seed: 1 });
    const r = engine.trainSlice(
      net.params,
      net.state,
      {
        inputs: [{ data: ids, shape: [2, 5] }],
        y: { data: Float32Array.of(0, 1), shape: [2] },
      },
      0,
      0,
    );
    const { header, body } = encodeTrainReply({ ...base, encoding: "f32" }, r);
    const m = wire(header, body);
    const decoded = decodeTrainReply(m.header as typeof header, m.body, net.params.length);
    assert.ok(typeof decoded !== "string", String(decoded));
    assert.deepEqual([...decoded.gradSquares![0]!.rows], [0, 3, 7, 42, 500, 999]);
    assert.deepEqual(decoded.gradSquares, r.gradSquares);
    // What follows the gradient (and its padding to 8 bytes): here only the squares.
    return m.body.length - Math.ceil(net.params.length * 4 / 8) * 8;
  };
  const small = squareBytes(1_000), large = squareBytes(100_000);
  // 6 distinct ids: 6 row ids and 6 rows of 8 squares.
  assert.equal(small, 4 * 6 * (1 + 8));
  assert.equal(large, small);
});
