import assert from "node:assert/strict";
import { regularizers, tf } from "../../mod.ts";

const W = [0.5, -2, 1];
// Σ|w| = 3.5, Σw² = 0.25 + 4 + 1 = 5.25

Deno.test("l1, l2 and l1_l2 penalties are l1·Σ|w| + l2·Σw²", () => {
  const w = tf.tensor1d(W);
  const cases: [InstanceType<typeof regularizers.Regularizer>, number][] = [
    [regularizers.l1(0.1), 0.35],
    [regularizers.l2(0.1), 0.525],
    [regularizers.l1_l2({ l1: 0.1, l2: 0.01 }), 0.35 + 0.0525],
    [regularizers.l2(), 0.0525], // Keras default 0.01
  ];
  for (const [r, expected] of cases) {
    assert.ok(Math.abs(r.penalty(w).dataSync()[0]! - expected) < 1e-6, `${r.l1}/${r.l2}`);
    assert.ok(Math.abs(r.penaltyOf(Float32Array.from(W)) - expected) < 1e-6);
  }
});

Deno.test("Regularizer configs are Keras 3's L1, L2 and L1L2 and read back", () => {
  assert.deepEqual(regularizers.l1(0.1).toConfig().class_name, "L1");
  assert.deepEqual(regularizers.l2(0.1).toConfig().config, { l2: 0.1 });
  const both = regularizers.l1L2({ l1: 0.1, l2: 0.2 });
  assert.deepEqual(both.toConfig().config, { l1: 0.1, l2: 0.2 });
  const back = regularizers.Regularizer.fromConfig(both.toConfig())!;
  assert.deepEqual([back.l1, back.l2], [0.1, 0.2]);
  assert.equal(regularizers.Regularizer.fromConfig(null), null);
  assert.throws(
    () => regularizers.Regularizer.fromConfig({ class_name: "OrthogonalRegularizer" }),
    /Use one of: L1, L2, L1L2/,
  );
});

Deno.test("Regularizers reject negative factors with the value", () => {
  assert.throws(() => regularizers.l2(-0.1), /l2 must be a finite number >= 0: received -0.1/);
});

Deno.test("Regularizers given by name resolve like Keras, and unknown names list the valid ones", () => {
  const byName = (n: string) => regularizers.Regularizer.fromConfig(n)!;
  assert.deepEqual([byName("l1").l1, byName("l1").l2], [0.01, 0]);
  assert.deepEqual([byName("l2").l1, byName("l2").l2], [0, 0.01]);
  assert.deepEqual([byName("l1_l2").l1, byName("l1_l2").l2], [0, 0]);
  assert.throws(() => byName("l3"), /Unknown regularizer: 'l3'. Use one of: l1, l2, l1_l2/);
});
