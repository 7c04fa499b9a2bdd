/**
 * Another slice of a shared-memory slice exchange, in a thread of its own (the test's thread blocks in
 * its exchange): maps the region it is given and runs what the test asks.
 */
/// <reference lib="deno.worker" />
import { SharedExchangeArea, SharedRegion } from "../../shared/io/data_plane/mod.ts";

type Task =
  | { path: string; bytes: number; run: "slice1"; calls: number; version: number }
  | { path: string; bytes: number; run: "abort"; version: number; afterMs: number };

self.onmessage = async (e: MessageEvent<Task>) => {
  const task = e.data;
  const region = SharedRegion.open(task.path, task.bytes);
  const area = new SharedExchangeArea(region.bytes);
  // The test's thread blocks in its exchange from here on: it waits for this before it starts.
  self.postMessage({ ready: true });
  try {
    if (task.run === "abort") {
      await new Promise((resolve) => setTimeout(resolve, task.afterMs));
      area.abortThrough(task.version);
      self.postMessage({ done: true });
      return;
    }
    const seen: number[][] = [];
    for (let call = 0; call < task.calls; call++) {
      const part = Float32Array.from({ length: 1 + (call % 5) }, (_, i) => 1000 + call * 10 + i);
      const parts = area.gather(task.version, call, 1, 2, part, { deadline: performance.now() + 10_000 });
      seen.push(parts.map((p) => p[0]!));
    }
    self.postMessage({ done: true, seen });
  } catch (error) {
    self.postMessage({ error: String(error) });
  } finally {
    region.close();
  }
};
