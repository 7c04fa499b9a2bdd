import assert from "node:assert/strict";
import {
  MAX_PART_FLOATS,
  MAX_SLICES,
  SHARED_EXCHANGE_BYTES,
  SharedExchangeAbortedError,
  SharedExchangeArea,
} from "./shared_exchange.ts";
import { SharedRegion } from "./shared_memory.ts";

const THREAD = new URL("../../../tests/support/shared_exchange_thread.ts", import.meta.url).href;

function withArea<T>(fn: (area: SharedExchangeArea, region: SharedRegion) => Promise<T>): Promise<T> {
  const region = SharedRegion.create("shoal-test-sync", SHARED_EXCHANGE_BYTES);
  const area = new SharedExchangeArea(region.bytes);
  area.reset();
  return fn(area, region).finally(() => region.close());
}

type Outcome = { done?: boolean; seen?: number[][]; error?: string };

/**
 * Starts the other slice's thread; resolves once it mapped the region (the caller may then block in
 * its own exchange) with the promise of its outcome.
 */
async function thread(task: Record<string, unknown>): Promise<{ outcome: Promise<Outcome> }> {
  const worker = new Worker(THREAD, { type: "module" });
  const ready = Promise.withResolvers<void>();
  const outcome = Promise.withResolvers<Outcome>();
  worker.onmessage = (e) => {
    if (e.data.ready) return ready.resolve();
    outcome.resolve(e.data);
    worker.terminate();
  };
  worker.postMessage(task);
  await ready.promise;
  return { outcome: outcome.promise };
}

Deno.test("two slices in two threads exchange 40 parts of changing lengths, each in slice order", async () => {
  await withArea(async (area, region) => {
    const other = await thread({
      path: region.path,
      bytes: region.bytes.byteLength,
      run: "slice1",
      calls: 40,
      version: 7,
    });
    const seen: number[][] = [];
    for (let call = 0; call < 40; call++) {
      const part = Float32Array.from({ length: 1 + (call % 5) }, (_, i) => call * 10 + i);
      const parts = area.gather(7, call, 0, 2, part, { deadline: performance.now() + 10_000 });
      assert.deepEqual(parts[0], part);
      assert.deepEqual(parts[1], Float32Array.from({ length: part.length }, (_, i) => 1000 + call * 10 + i));
      seen.push(parts.map((p) => p[0]!));
    }
    const result = await other.outcome;
    assert.equal(result.error, undefined);
    assert.deepEqual(result.seen, seen, "both slices saw the same parts");
  });
});

Deno.test("a slice waiting for a part that never comes wakes when the coordinator aborts its attempt", async () => {
  await withArea(async (area, region) => {
    const aborter = await thread({
      path: region.path,
      bytes: region.bytes.byteLength,
      run: "abort",
      version: 3,
      afterMs: 50,
    });
    assert.throws(
      () => area.gather(3, 0, 0, 2, Float32Array.of(1), { deadline: performance.now() + 20_000 }),
      (error: Error) =>
        error instanceof SharedExchangeAbortedError && /weights version 3/.test(error.message),
    );
    await aborter.outcome;
    // An aborted attempt stays aborted: a slice that reaches it late does not wait at all.
    assert.throws(
      () => area.gather(2, 0, 1, 2, Float32Array.of(1), { deadline: Infinity }),
      SharedExchangeAbortedError,
    );
    // A newer attempt is not.
    assert.throws(
      () => area.gather(4, 0, 0, 2, Float32Array.of(1), { deadline: performance.now() + 30 }),
      /did not arrive in time/,
    );
  });
});

Deno.test("a stop request ends the wait, and parts of another length name the cause", async () => {
  await withArea((area) => {
    assert.throws(
      () => area.gather(1, 0, 0, 2, Float32Array.of(1), { deadline: Infinity, stopRequested: () => true }),
      /stopping during exchange 0/,
    );
    // Slice 1 writes its part of two values, then gives up waiting at once.
    assert.throws(() => area.gather(5, 0, 1, 2, Float32Array.of(1, 2), { deadline: 0 }), /did not arrive/);
    assert.throws(
      () => area.gather(5, 0, 0, 2, Float32Array.of(1, 2, 3), { deadline: Infinity }),
      /slice 1 sent 2 values, this slice 3: the workers run different models/,
    );
    return Promise.resolve();
  });
});

Deno.test("the area's bounds: what fits, and a region too small", () => {
  assert.ok(SharedExchangeArea.fits(MAX_SLICES, MAX_PART_FLOATS, 4095));
  assert.ok(!SharedExchangeArea.fits(MAX_SLICES + 1, 1, 0));
  assert.ok(!SharedExchangeArea.fits(2, MAX_PART_FLOATS + 1, 0));
  assert.ok(!SharedExchangeArea.fits(2, 1, 4096));
  assert.throws(() => new SharedExchangeArea(new Uint8Array(64)), /needs \d+ bytes on a 16-byte boundary/);
});
