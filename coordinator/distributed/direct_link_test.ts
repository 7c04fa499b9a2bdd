/**
 * The coordinator's side of a data-plane link over a real loopback TCP connection, with this test as
 * the worker: a train reply's gradient is checked for NaN and infinities while it arrives.
 */
import assert from "node:assert/strict";
import { float32WithHeadRoom, FrameChannel } from "../../shared/io/data_plane/mod.ts";
import { DataFrame, encodeTrainReply, type WorkRequest } from "../../shared/io/protocol/mod.ts";
import { DirectLink } from "./direct_link.ts";

const JOB = "0123456789abcdef";
const LENGTH = 600_000;

/** A link to a worker played by `serve`, which answers each request frame on its own channel. */
async function linkTo(serve: (channel: FrameChannel, id: number, req: WorkRequest) => Promise<void>) {
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
      if (f.t === "req") await serve(worker, f.id, f.req);
    }
  })();
  const channel = new FrameChannel(accepted, { maxBodyBytes: 1 << 24, encrypted: false, peer: "w0" });
  const link = new DirectLink(channel, "127.0.0.1", () => {});
  return {
    link,
    async [Symbol.asyncDispose]() {
      channel.close();
      worker.close();
      await served;
    },
  };
}

function trainRequest(step: number): WorkRequest {
  return {
    kind: "train",
    job: JOB,
    data: "x",
    version: 1,
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
