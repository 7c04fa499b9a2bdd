import assert from "node:assert/strict";
import { connect } from "npm:nats@2.29.3";
import {
  decodeMessage,
  encodeMessage,
  jobSubjects,
  startNatsServer,
  SyncHeader,
} from "../shared/io/nats/mod.ts";
import { NatsSliceExchange, StepAbortedError } from "./slice_exchange.ts";

const JOB = "exchange-test";

/** Publishes what the other slice or the coordinator would, and waits until the server passed it on. */
async function publish(url: string, header: SyncHeader, part?: Float32Array): Promise<void> {
  const nc = await connect({ servers: url });
  nc.publish(jobSubjects(JOB).sync(header.version), encodeMessage(header, part));
  await nc.flush();
  await nc.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
}

Deno.test("the slice exchange returns every slice's part in slice order, aborts and times out", async () => {
  await using server = await startNatsServer();
  const exchange = await NatsSliceExchange.start({
    servers: server.url,
    name: "w0",
    job: JOB,
    timeoutMs: 400,
  });
  try {
    // The other slice (0) answered first: its parts wait in the helper thread until this slice asks.
    await publish(
      server.url,
      { kind: "part", job: JOB, version: 3, slice: 0, call: 0 },
      Float32Array.of(1, 2),
    );
    await publish(
      server.url,
      { kind: "part", job: JOB, version: 3, slice: 0, call: 1 },
      Float32Array.of(5, 6),
    );
    await publish(
      server.url,
      { kind: "part", job: "other-job", version: 3, slice: 0, call: 2 },
      Float32Array.of(0, 0),
    );
    const slice1 = exchange.forSlice(3, 1, 2);
    assert.deepEqual(slice1.gather(Float32Array.of(3, 4)), [Float32Array.of(1, 2), Float32Array.of(3, 4)]);
    assert.deepEqual(slice1.gather(Float32Array.of(7, 8)), [Float32Array.of(5, 6), Float32Array.of(7, 8)]);

    const started = performance.now();
    assert.throws(
      () => slice1.gather(Float32Array.of(9, 9)),
      /slice 1 of weights version 3: the other 1 slices' parts of exchange 2 did not arrive within 0.4 s/,
    );
    assert.ok(performance.now() - started >= 390, "waited for the timeout");

    await publish(server.url, { kind: "abort", job: JOB, version: 4, reason: "worker w2 was lost" });
    assert.throws(() => exchange.forSlice(4, 0, 3).gather(Float32Array.of(1)), StepAbortedError);

    // A later attempt is not affected by the abort of an earlier one.
    await publish(server.url, { kind: "part", job: JOB, version: 5, slice: 1, call: 0 }, Float32Array.of(2));
    assert.deepEqual(exchange.forSlice(5, 0, 2).gather(Float32Array.of(1)), [
      Float32Array.of(1),
      Float32Array.of(2),
    ]);
  } finally {
    await exchange.close();
  }
});

Deno.test("a slice waiting for the others sends its part again, so one lost message does not stall the step", async () => {
  await using server = await startNatsServer();
  const listener = await connect({ servers: server.url });
  const seen: SyncHeader[] = [];
  listener.subscribe(jobSubjects(JOB).sync(7), {
    callback: (_error, msg) => seen.push(decodeMessage(msg.data, SyncHeader).header),
  });
  await listener.flush();
  const exchange = await NatsSliceExchange.start({
    servers: server.url,
    name: "w1",
    job: JOB,
    timeoutMs: 1300,
  });
  try {
    assert.throws(() => exchange.forSlice(7, 1, 2).gather(Float32Array.of(1)), /did not arrive within 1.3 s/);
    // This thread was blocked meanwhile: let the buffered messages through.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const copies = seen.filter((h) => h.kind === "part" && h.slice === 1 && h.call === 0).length;
    assert.ok(copies >= 3, `the part was sent ${copies} times in 1.3 s`);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const after = seen.length;
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(seen.length, after, "no more copies once the slice stopped waiting");
  } finally {
    await exchange.close();
    await listener.close();
  }
});

Deno.test("the slice exchange says which server it could not reach", async () => {
  await assert.rejects(
    NatsSliceExchange.start({ servers: "nats://127.0.0.1:1", name: "w0", job: JOB }),
    /Worker w0 could not start its slice exchange for job exchange-test: .*127\.0\.0\.1:1/,
  );
});
