import assert from "node:assert/strict";
import { connect } from "npm:nats@2.29.3";
import { decodeMessage, encodeMessage, startNatsServer } from "../shared/io/nats/mod.ts";
import { DataPlaneAuthError, newJobSecret } from "../shared/io/data_plane/mod.ts";
import { encodeGathered, jobSubjects, SyncHeader } from "../shared/io/protocol/mod.ts";
import {
  BlockingSliceExchange,
  StepAbortedError,
  ThreadSliceExchange,
  type WorkerSliceExchange,
} from "./slice_exchange.ts";

const JOB = "exchange-test";

/** Publishes what the coordinator would, and waits until the server passed it on. */
async function publish(url: string, header: SyncHeader, body?: Float32Array): Promise<void> {
  const nc = await connect({ servers: url });
  nc.publish(jobSubjects(JOB).sync(header.version), encodeMessage(header, body));
  await nc.flush();
  await nc.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
}

Deno.test("over NATS: the gathered parts come back in slice order; aborts and timeouts end a wait", async () => {
  await using server = await startNatsServer();
  const exchange = await ThreadSliceExchange.start({
    route: { via: "nats", servers: server.url },
    name: "w1",
    job: JOB,
    timeoutMs: 400,
  });
  try {
    // The coordinator's answer came first: it waits in the helper thread until this slice asks.
    const gathered = (call: number, parts: number[][]) =>
      publish(
        server.url,
        { kind: "gathered", job: JOB, version: 3, slices: parts.length, call },
        encodeGathered(parts.map((p) => Float32Array.from(p))),
      );
    await gathered(0, [[1, 2], [3, 4]]);
    await gathered(1, [[5, 6], [7, 8]]);
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

    // A later attempt is not affected by the abort of an earlier one; a one-slice step needs no one.
    assert.deepEqual(exchange.forSlice(5, 0, 1).gather(Float32Array.of(1)), [Float32Array.of(1)]);
  } finally {
    await exchange.close();
  }
});

Deno.test("over NATS: a waiting slice sends its part again, so one lost message does not stall the step", async () => {
  await using server = await startNatsServer();
  const listener = await connect({ servers: server.url });
  const seen: SyncHeader[] = [];
  listener.subscribe(jobSubjects(JOB).part, {
    callback: (_error, msg) => seen.push(decodeMessage(msg.data, SyncHeader).header),
  });
  await listener.flush();
  const exchange = await ThreadSliceExchange.start({
    route: { via: "nats", servers: server.url },
    name: "w1",
    job: JOB,
    timeoutMs: 1300,
  });
  try {
    assert.throws(() => exchange.forSlice(7, 1, 2).gather(Float32Array.of(1)), /did not arrive within 1.3 s/);
    // This thread was blocked meanwhile: let the buffered messages through.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const copies = seen.filter((h) =>
      h.kind === "part" && h.slice === 1 && h.call === 0 && h.worker === "w1"
    );
    assert.ok(copies.length >= 3, `the part was sent ${copies.length} times in 1.3 s`);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const after = seen.length;
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(seen.length, after, "no more copies once the slice stopped waiting");
  } finally {
    await exchange.close();
    await listener.close();
  }
});

/** Starts the stand-in coordinator thread; resolves with its addresses and its messages. */
async function standInCoordinator(secret: string) {
  const coordinator = new Worker(
    new URL("../tests/support/sync_coordinator_thread.ts", import.meta.url).href,
    {
      type: "module",
    },
  );
  const messages: Record<string, unknown>[] = [];
  const listening = Promise.withResolvers<string[]>();
  coordinator.onmessage = (e) => {
    messages.push(e.data);
    if (e.data.addresses) listening.resolve(e.data.addresses);
  };
  coordinator.postMessage({ job: JOB, secret });
  return { coordinator, messages, addresses: await listening.promise };
}

for (const kind of ["helper thread", "blocking Unix socket"] as const) {
  Deno.test(`over the data plane (${kind}): the part goes to the coordinator once and the gathered parts come back`, async () => {
    const secret = newJobSecret();
    const { coordinator, messages, addresses } = await standInCoordinator(secret);
    const unix = addresses.find((a) => a.startsWith("unix:"))!.slice("unix:".length);
    const exchange: WorkerSliceExchange = kind === "helper thread"
      ? await ThreadSliceExchange.start({
        route: { via: "direct", addresses, secret },
        name: "w0",
        job: JOB,
        timeoutMs: 2000,
      })
      : BlockingSliceExchange.connect(unix, { job: JOB, secret, name: "w0", timeoutMs: 2000 });
    try {
      const slice = exchange.forSlice(8, 0, 2);
      assert.deepEqual(slice.gather(Float32Array.of(1, 2)), [Float32Array.of(1, 2), Float32Array.of(10, 20)]);
      assert.deepEqual(slice.gather(Float32Array.of(3)), [Float32Array.of(3), Float32Array.of(30)]);
      assert.throws(() => exchange.forSlice(9, 1, 2).gather(Float32Array.of(1)), StepAbortedError);
      assert.deepEqual(exchange.forSlice(10, 0, 1).gather(Float32Array.of(5)), [Float32Array.of(5)]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(messages.filter((m) => m.connections), [{ connections: 1, role: "sync" }]);
    } finally {
      await exchange.close();
      coordinator.terminate();
    }
  });
}

Deno.test("a blocking Unix socket without the job's secret is refused, and a missing socket is named", async () => {
  const { coordinator, messages, addresses } = await standInCoordinator(newJobSecret());
  const unix = addresses.find((a) => a.startsWith("unix:"))!.slice("unix:".length);
  try {
    assert.throws(
      () => BlockingSliceExchange.connect(unix, { job: JOB, secret: newJobSecret(), name: "w0" }),
      (e: Error) => e instanceof DataPlaneAuthError && /did not prove the secret/.test(e.message),
    );
    assert.throws(
      () =>
        BlockingSliceExchange.connect(`${unix}.missing`, { job: JOB, secret: newJobSecret(), name: "w0" }),
      /Cannot connect to unix:.*\.missing: errno 2/,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(
      messages.some((m) => /did not prove the secret/.test(String(m.refused))),
      JSON.stringify(messages),
    );
  } finally {
    coordinator.terminate();
  }
});

Deno.test("the slice exchange says which server it could not reach", async () => {
  await assert.rejects(
    ThreadSliceExchange.start({
      route: { via: "nats", servers: "nats://127.0.0.1:1" },
      name: "w0",
      job: JOB,
    }),
    /Worker w0 could not start its slice exchange for job exchange-test: .*127\.0\.0\.1:1/,
  );
});
