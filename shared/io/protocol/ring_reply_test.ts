import assert from "node:assert/strict";
import { decodeTrainReply, encodeTrainReply } from "./bodies.ts";
import { bodyParts } from "../nats/codec.ts";
import { DataFrame } from "./messages.ts";

const base = {
  kind: "train" as const,
  job: "j",
  worker: "w1",
  step: 4,
  computeMs: 1,
  encoding: "f32" as const,
};

function joined(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

Deno.test("a ring reply carries its reduced shard, and decodes back to it", () => {
  const shard = Float32Array.of(0.5, -1.25, 3);
  const result = {
    count: 6,
    grads: new Float32Array(10),
    lossSum: 2,
    metricSums: [3],
    regLoss: 0,
    batchStats: [{ layer: "bn", mean: Float32Array.of(1, 2), variance: Float32Array.of(3, 4) }],
  };
  const { header, body } = encodeTrainReply({ ...base, shard: { start: 4, end: 7 } }, result, shard);
  assert.equal(header.gradLength, 3);
  const decoded = decodeTrainReply(
    header,
    joined(bodyParts(body).map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength))),
    10,
  );
  assert.ok(typeof decoded !== "string", String(decoded));
  assert.deepEqual([...decoded.grads], [...shard]);
  assert.deepEqual([...decoded.batchStats[0]!.variance], [3, 4]);
});

Deno.test("a ring reply whose values do not fill its shard is refused, naming the shard", () => {
  const result = {
    count: 6,
    grads: new Float32Array(10),
    lossSum: 0,
    metricSums: [],
    regLoss: 0,
    batchStats: [],
  };
  const { header, body } = encodeTrainReply(
    { ...base, shard: { start: 4, end: 8 } },
    result,
    new Float32Array(3),
  );
  const bytes = joined(bodyParts(body).map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength)));
  assert.match(
    String(decodeTrainReply({ ...header, gradLength: 3 }, bytes, 10)),
    /its gradient has 3 values \(16 body bytes\), its shard 4\.\.8 has 4/,
  );
});

Deno.test("ring frames parse, and a chunk without its addressee is refused", () => {
  assert.ok(DataFrame.safeParse({ t: "rchunk", version: 3, to: "w2", round: 0, chunk: 1 }).success);
  assert.ok(!DataFrame.safeParse({ t: "rchunk", version: 3, round: 0, chunk: 1 }).success);
  const part = { t: "wpart", job: "j", version: 3, paramsLength: 10, stateLength: 0, offset: 0 };
  assert.ok(DataFrame.safeParse({ ...part, chain: [{ name: "w0", addresses: ["unix:/tmp/a"] }] }).success);
  assert.ok(!DataFrame.safeParse({ ...part, chain: [{ name: "w0", addresses: [] }] }).success);
});
