/**
 * The coordinator's side of a data-plane link over a real loopback TCP connection, with this test as
 * the worker: a train reply's gradient is checked for NaN and infinities while it arrives, and weights
 * in shared memory go out with the request that names them.
 */
import assert from "node:assert/strict";
import { float32WithHeadRoom, FrameChannel, SharedRegion } from "../../shared/io/data_plane/mod.ts";
import { DataFrame, encodeTrainReply, type WorkRequest } from "../../shared/io/protocol/mod.ts";
import { DirectLink } from "./direct_link.ts";

const JOB = "0123456789abcdef";
const LENGTH = 600_000;

/**
 * A link to a worker played by `serve`, which answers each request frame on its own channel; `seen`
 * gets every frame's header, and `shared` makes the link one whose replies come in shared memory.
 */
async function linkTo(
  serve: (channel: FrameChannel, id: number, req: WorkRequest) => Promise<void>,
  seen: unknown[] = [],
  shared?: SharedRegion,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [accepted, dialed] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
  ]);
  listener.close();
  const worker = new FrameChannel(dialed, { maxBodyBytes: 1 << 24, encrypted: false, peer: "coordinator" });
  const served = (async () => {
    for (let frame = await worker.next(); frame; frame = await worker.next()) {
      const f = DataFrame.parse(frame.header);
      seen.push(f);
      if (f.t === "req") await serve(worker, f.id, f.req);
    }
  })();
  const channel = new FrameChannel(accepted, { maxBodyBytes: 1 << 24, encrypted: false, peer: "w0" });
  const link = new DirectLink(channel, "127.0.0.1", () => {}, shared && { grads: shared, exchange: false });
  return {
    link,
    async [Symbol.asyncDispose]() {
      channel.close();
      worker.close();
      await served;
    },
  };
}

function trainRequest(step: number, version = 1): WorkRequest {
  return {
    kind: "train",
    job: JOB,
    data: "x",
    version,
    step,
    rowOffset: 0,
    slice: 0,
    slices: 1,
    encoding: "f32",
  };
}

Deno.test("a train reply's gradient is found finite, or not, as it arrives over TCP", async () => {
  // Step k's gradient holds a NaN or an infinity at `bad[k]`, or none: at the first value, at a read's
  // likely boundary, and at the last value.
  const bad: (number | undefined)[] = [undefined, 0, 16_383, 16_384, LENGTH - 1, undefined];
  await using worker = await linkTo(async (channel, id, req) => {
    if (req.kind !== "train") return;
    const grads = float32WithHeadRoom(LENGTH);
    for (let i = 0; i < LENGTH; i++) grads[i] = Math.sin(i) * 1e30;
    const at = bad[req.step];
    if (at !== undefined) grads[at] = req.step % 2 ? NaN : -Infinity;
    const reply = encodeTrainReply(
      { kind: "train", job: JOB, worker: "w0", step: req.step, computeMs: 1, encoding: "f32" },
      { count: 1, grads, lossSum: 0, metricSums: [], regLoss: 0, batchStats: [] },
    );
    await channel.send({ t: "rep", id, rep: reply.header }, reply.body);
  });
  for (const [step, at] of bad.entries()) {
    const reply = await worker.link.request(trainRequest(step), new Uint8Array(4), {
      timeoutMs: 10_000,
      signal: new AbortController().signal,
    });
    assert.equal(reply.gradsFinite ?? false, at === undefined, `step ${step}, bad value at ${at}`);
    assert.equal(reply.body.byteLength, LENGTH * 4);
    const values = new Float32Array(reply.body.buffer, reply.body.byteOffset, LENGTH);
    assert.equal(Number.isFinite(values[at ?? 1]!), at === undefined, "the body holds what was sent");
  }
});

Deno.test("weights in a shared-memory slot go out once, with the first request naming their version", async () => {
  const seen: unknown[] = [];
  const region = SharedRegion.create("shoal-test-link", 4096);
  await using worker = await linkTo(
    async (channel, id, req) => {
      if (req.kind !== "train") return;
      const reply = encodeTrainReply(
        { kind: "train", job: JOB, worker: "w0", step: req.step, computeMs: 1, encoding: "f32" },
        { count: 1, grads: new Float32Array(4), lossSum: 0, metricSums: [], regLoss: 0, batchStats: [] },
      );
      await channel.send({ t: "rep", id, rep: reply.header }, reply.body);
    },
    seen,
    region,
  );
  const weights = (version: number) => ({ job: JOB, version, paramsLength: 4, stateLength: 0 });
  const request = (step: number, version: number) =>
    worker.link.request(trainRequest(step, version), new Uint8Array(4), {
      timeoutMs: 10_000,
      signal: new AbortController().signal,
    });
  const frames = () => seen.splice(0).map((f) => (f as { t: string; version?: number; id?: number }));
  // Held until a request names version 1; a second request of that version goes alone.
  await worker.link.sendWeights(weights(1), new Uint8Array(16), 1);
  await request(1, 1);
  await request(2, 1);
  assert.deepEqual(frames().map((f) => [f.t, f.version]), [["weights", 1], ["req", undefined], [
    "req",
    undefined,
  ]]);
  // Version 2's slot replaced by weights sent another way (a ring's chain): a request for version 3
  // does not carry version 2's frame.
  await worker.link.sendWeights(weights(2), new Uint8Array(16), 0);
  await request(3, 3);
  assert.deepEqual(frames().map((f) => f.t), ["req"]);
  // Weights in the frame's body (not shared) go at once.
  await worker.link.sendWeights(weights(4), new Uint8Array(16));
  await request(4, 4);
  assert.deepEqual(frames().map((f) => [f.t, f.version]), [["weights", 4], ["req", undefined]]);
});
