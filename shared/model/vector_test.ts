import assert from "node:assert/strict";
import { firstNonFinite, nonFiniteProbe, weightedSum } from "./vector.ts";

Deno.test("firstNonFinite finds a NaN or infinity at any position, the unrolled body and the tail alike", () => {
  for (const n of [1, 4, 7, 9]) {
    const a = Float32Array.from({ length: n }, (_, i) => i - 3.5);
    assert.equal(firstNonFinite(a), undefined);
    assert.equal(nonFiniteProbe(a), 0);
    for (let at = 0; at < n; at++) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const b = a.slice();
        b[at] = bad;
        if (at + 1 < n) b[n - 1] = bad;
        assert.equal(firstNonFinite(b), at, `${bad} at ${at} of ${n}`);
      }
    }
  }
});

Deno.test("weightedSum sums in source order in double precision, rounding once", () => {
  const a = Float32Array.of(1, 2, 3), b = Float32Array.of(1e-8, -2, 0.1), c = Float32Array.of(0, 0, 1);
  const out = new Float32Array(3);
  weightedSum(out, [a, b], [0.25, 0.75]);
  assert.deepEqual(
    out,
    Float32Array.of(
      Math.fround(0.25 + 0.75 * Math.fround(1e-8)),
      -1,
      Math.fround(0.75 + 0.75 * Math.fround(0.1)),
    ),
  );
  weightedSum(out, [a, b, c], [0.5, 0.25, 0.25]);
  assert.deepEqual(
    out,
    Float32Array.of(
      Math.fround(0.5 + 0.25 * Math.fround(1e-8)),
      0.5,
      Math.fround(1.5 + 0.25 * Math.fround(0.1) + 0.25),
    ),
  );
});
