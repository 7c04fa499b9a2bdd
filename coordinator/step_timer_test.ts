import assert from "node:assert/strict";
import { StepTimer } from "./step_timer.ts";

Deno.test("a step timer reports every named phase, 0 before any step, and the laps it measured", () => {
  const timer = new StepTimer(["compute_ms", "reduce_ms"]);
  assert.deepEqual(timer.medians(), { compute_ms: 0, reduce_ms: 0 });
  for (let step = 0; step < 3; step++) {
    timer.start();
    timer.lap("compute_ms");
    timer.lap("reduce_ms");
    timer.lap("optimizer_ms");
  }
  const medians = timer.medians();
  assert.deepEqual(Object.keys(medians), ["compute_ms", "reduce_ms", "optimizer_ms"]);
  for (const ms of Object.values(medians)) assert.ok(Number.isFinite(ms) && ms >= 0, `${ms}`);
});
