/**
 * Comparisons the tests share.
 *
 * @module
 */
import assert from "node:assert/strict";

/** The largest absolute difference between `a` and `b`, after checking they have the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
