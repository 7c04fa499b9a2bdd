import assert from "node:assert/strict";
import { optimizers } from "../../mod.ts";
import { optimizerFromConfig } from "./optimizers.ts";
import { scheduleFromConfig } from "./schedules.ts";

const { CosineDecay, ExponentialDecay, PiecewiseConstantDecay } = optimizers.schedules;

function assertClose(actual: readonly number[], expected: readonly number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length, "length");
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) <= tol, `index ${i}: ${actual[i]} vs ${e}`));
}

Deno.test("CosineDecay follows Keras's cosine from the initial rate down to alpha, then stays", () => {
  // Keras: 0.1 * ((1 - 0.1) * 0.5 * (1 + cos(pi * min(step, 100) / 100)) + 0.1).
  const s = new CosineDecay({ initialLearningRate: 0.1, decaySteps: 100, alpha: 0.1 });
  assertClose([0, 25, 50, 100, 150].map((t) => s.at(t)), [0.1, 0.08681980515339464, 0.055, 0.01, 0.01]);
  assert.deepEqual([s.alpha, s.warmupTarget, s.warmupSteps, s.name], [0.1, null, 0, "CosineDecay"]);
  assert.equal(new CosineDecay({ initialLearningRate: 1, decaySteps: 10 }).alpha, 0);
});

Deno.test("CosineDecay warms up linearly to warmupTarget, then decays from it over decaySteps", () => {
  const s = new CosineDecay({ initialLearningRate: 0, decaySteps: 100, warmupTarget: 1, warmupSteps: 10 });
  assertClose([0, 5, 10, 60, 110, 200].map((t) => s.at(t)), [0, 0.5, 1, 0.5, 0, 0], 1e-15);
});

Deno.test("CosineDecay rejects decaySteps <= 0 with the value", () => {
  assert.throws(
    () => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 0 }),
    /CosineDecay as decaySteps must be a finite number > 0: received 0/,
  );
});

Deno.test("PiecewiseConstantDecay switches after each boundary, as Keras (step <= boundary keeps the value)", () => {
  const s = new PiecewiseConstantDecay({ boundaries: [100, 200], values: [1, 0.5, 0.1] });
  assert.deepEqual([0, 100, 101, 200, 201, 10_000].map((t) => s.at(t)), [1, 1, 0.5, 0.5, 0.1, 0.1]);
  assert.throws(
    () => new PiecewiseConstantDecay({ boundaries: [100, 200], values: [1, 0.5] }),
    /length of boundaries should be 1 less than the length of values: received boundaries=\[100, 200\], values=\[1, 0.5\]/,
  );
});

Deno.test("every schedule round-trips through its Keras config inside an optimizer config", () => {
  const all = [
    new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 10, decayRate: 0.5, staircase: true }),
    new CosineDecay({
      initialLearningRate: 0.01,
      decaySteps: 10,
      alpha: 0.2,
      warmupTarget: 0.1,
      warmupSteps: 3,
    }),
    new PiecewiseConstantDecay({ boundaries: [3, 6], values: [0.1, 0.01, 0.001] }),
  ];
  for (const schedule of all) {
    const adam = new optimizers.AdamW({ learningRate: schedule });
    const config = adam.toConfig();
    const entry = config.learning_rate as { class_name: string; config: Record<string, unknown> };
    assert.equal(entry.class_name, schedule.className);
    const back = optimizerFromConfig({ class_name: "AdamW", config });
    assert.deepEqual(back.toConfig(), config);
    for (const t of [0, 2, 4, 7, 20]) assert.equal(back.schedule!.at(t), schedule.at(t));
  }
});

Deno.test("a Keras CosineDecay config (as Keras 3.15 writes it) builds the same schedule", () => {
  const s = scheduleFromConfig({
    module: "keras.optimizers.schedules",
    class_name: "CosineDecay",
    config: {
      initial_learning_rate: 0.001,
      decay_steps: 1000,
      alpha: 0.0,
      name: "CosineDecay",
      warmup_target: null,
      warmup_steps: 0,
    },
  } as { class_name: string; config: Record<string, unknown> });
  assert.equal(s.at(8), 0.001 * 0.5 * (1 + Math.cos(Math.PI * 8 / 1000)));
  assert.throws(
    () => scheduleFromConfig({ class_name: "InverseTimeDecay", config: {} }),
    /Unsupported learning rate schedule: 'InverseTimeDecay'. Use one of: ExponentialDecay, CosineDecay, PiecewiseConstantDecay/,
  );
});
