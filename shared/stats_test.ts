import assert from "node:assert/strict";
import { median } from "./stats.ts";

Deno.test("median: middle value, mean of the middle two, 0 for none, input unchanged", () => {
  const xs = [5, 1, 3];
  assert.equal(median(xs), 3);
  assert.deepEqual(xs, [5, 1, 3]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), 0);
});
