import assert from "node:assert/strict";
import { optimizers } from "../../mod.ts";
import { getOptimizer, type Optimizer, optimizerFromConfig, type OptimizerVariable } from "./optimizers.ts";

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

const W0 = [1, -1, 0.5];
const GRADS = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0], [0.2, 0.2, -0.1]];

/**
 * Weights after each of 3 steps from W0 with GRADS, as Keras 3.15.1 (TensorFlow backend) computes them:
 * `opt.apply([g], [keras.Variable(W0)])`, float32.
 */
const KERAS: Record<string, number[][]> = {
  adam: [
    [0.9990000128746033, -0.9990000128746033, 0.49900001287460327],
    [0.9987336993217468, -0.9993661046028137, 0.4983299672603607],
    [0.9980756044387817, -0.9998853206634521, 0.4980408251285553],
  ],
  sgd: [[0.99, -0.98, 0.47], [0.995, -1.02, 0.47], [0.975, -1.04, 0.48]],
  sgdMomentum: [[0.99, -0.98, 0.47], [0.986, -1.002, 0.443], [0.9624, -1.0418, 0.4287]],
  sgdNesterov: [[0.981, -0.962, 0.443], [0.9824, -1.0218, 0.4187], [0.94116, -1.07762, 0.41583]],
  rmsprop: [
    [0.9683787822723389, -0.9683775901794434, 0.46837741136550903],
    [0.9831223487854004, -0.9969489574432373, 0.46837741136550903],
    [0.9549368619918823, -1.0105446577072144, 0.4793604016304016],
  ],
  rmspropCenteredMomentum: [
    [0.9666685461997986, -0.966667115688324, 0.4666668772697449],
    [0.9648500084877014, -0.9789314866065979, 0.4500003159046173],
    [0.9340538382530212, -0.9991860389709473, 0.45278802514076233],
  ],
};

/**
 * Keras 3's formulas for the options below, transcribed in float32 (numpy) from keras/src/optimizers:
 * `_apply_weight_decay` (`w - w * wd * lr` before the update), Adam's amsgrad branch
 * (`v_hat = max(v_hat, v)` in the denominator), and `_clip_gradients` (clip_by_norm per variable,
 * clip_by_global_norm over all, or ops.clip). The clipping cases run SGD(0.1) on two variables,
 * W0[0:2] and W0[2:3].
 */
const FORMULAS: Record<string, number[][]> = {
  adamW: [
    [0.9890003800392151, -0.9890002608299255, 0.48950016498565674],
    [0.985348105430603, -0.9916722178459167, 0.4823102056980133],
    [0.9777817726135254, -0.9958729147911072, 0.4789365828037262],
  ],
  adamAmsgrad: [
    [0.9900003671646118, -0.9900002479553223, 0.4900001585483551],
    [0.9873371124267578, -0.9936612248420715, 0.4833030700683594],
    [0.9807561039924622, -0.9988535642623901, 0.4804117679595947],
  ],
  sgdClipnorm: [
    [0.9910557270050049, -0.9821114540100098, 0.47999998927116394],
    [0.9935364127159119, -1.0019570589065552, 0.47999998927116394],
    [0.979394257068634, -1.016099214553833, 0.4899999797344208],
  ],
  sgdGlobalClipnorm: [
    [0.9946547746658325, -0.989309549331665, 0.48396432399749756],
    [0.9971354603767395, -1.0091551542282104, 0.48396432399749756],
    [0.9838021397590637, -1.0224884748458862, 0.49063098430633545],
  ],
  sgdClipvalue: [
    [0.9900000095367432, -0.9850000143051147, 0.48500001430511475],
    [0.9950000047683716, -1.0, 0.48500001430511475],
    [0.9800000190734863, -1.0149999856948853, 0.4950000047683716],
  ],
};

const MAKE_FORMULAS: Record<string, () => Optimizer> = {
  adamW: () => new optimizers.AdamW({ learningRate: 0.01, weightDecay: 0.1 }),
  adamAmsgrad: () => new optimizers.Adam({ learningRate: 0.01, amsgrad: true }),
  sgdClipnorm: () => new optimizers.SGD({ learningRate: 0.1, clipnorm: 0.2 }),
  sgdGlobalClipnorm: () => new optimizers.SGD({ learningRate: 0.1, globalClipnorm: 0.2 }),
  sgdClipvalue: () => new optimizers.SGD({ learningRate: 0.1, clipvalue: 0.15 }),
};

const TWO_VARIABLES = [
  { path: "a/kernel", shape: [2], offset: 0, size: 2 },
  { path: "b/kernel", shape: [1], offset: 2, size: 1 },
];

for (const [name, expected] of Object.entries(FORMULAS)) {
  Deno.test(`${name}: 3 steps on two variables follow Keras 3's formulas`, () => {
    const opt = MAKE_FORMULAS[name]!();
    const w = Float32Array.from(W0);
    GRADS.forEach((g, step) => {
      const grads = Float32Array.from(g);
      opt.apply(w, grads, TWO_VARIABLES);
      assertClose(w, expected[step]!);
      assert.deepEqual(grads, Float32Array.from(g), "the caller's gradients are left as they are");
    });
  });
}

Deno.test("AdamW defaults are Keras's (weightDecay 0.004) and it refuses a null weightDecay", () => {
  const a = new optimizers.AdamW();
  assert.deepEqual(
    [a.learningRate, a.weightDecay, a.beta1, a.beta2, a.epsilon, a.amsgrad, a.name],
    [0.001, 0.004, 0.9, 0.999, 1e-7, false, "adamw"],
  );
  assert.equal(new optimizers.Adam().weightDecay, null);
  assert.throws(
    () => new optimizers.AdamW({ weightDecay: null }),
    /weightDecay must be a number: received null/,
  );
});

Deno.test("weight decay on Adam is AdamW's: both decay first, then take the same step", () => {
  const adam = new optimizers.Adam({ learningRate: 0.01, weightDecay: 0.1 });
  const w = Float32Array.from(W0);
  for (const g of GRADS) adam.apply(w, Float32Array.from(g));
  assertClose(w, FORMULAS.adamW![2]!);
});

Deno.test("only one of clipnorm, clipvalue and globalClipnorm may be set, as in Keras", () => {
  assert.throws(
    () => new optimizers.Adam({ clipnorm: 1, clipvalue: 0.5 }),
    /only one of clipnorm, clipvalue and globalClipnorm can be set: received clipnorm=1, clipvalue=0.5, globalClipnorm=null/,
  );
  assert.throws(
    () => new optimizers.SGD({ clipnorm: -1 }),
    /clipnorm must be a finite number >= 0 or null: received -1/,
  );
});

Deno.test("globalClipnorm turns a non-finite gradient norm into NaN weights, as Keras's clip_by_global_norm", () => {
  const sgd = new optimizers.SGD({ globalClipnorm: 1 });
  const w = Float32Array.of(1, 2);
  sgd.apply(w, Float32Array.of(Infinity, 0));
  assert.ok(Number.isNaN(w[0]) && Number.isNaN(w[1]));
});

Deno.test("amsgrad keeps a third slot and saves it after momentums and velocities, as Keras's build", () => {
  const adam = new optimizers.Adam({ amsgrad: true });
  assert.deepEqual(adam.slotPlan, [[0, 1], [2]]);
  adam.apply(Float32Array.of(1, 2, 3), Float32Array.of(0.1, 0.2, 0.3));
  const [m, v, vHat] = adam.slots;
  assert.deepEqual(vHat, v);
  assert.deepEqual(adam.saveOwnVariables(TWO_VARIABLES, 3).slice(2).map((x) => x.data), [
    m!.slice(0, 2),
    v!.slice(0, 2),
    m!.slice(2, 3),
    v!.slice(2, 3),
    vHat!.slice(0, 2),
    vHat!.slice(2, 3),
  ]);
});

Deno.test("clipping and weight decay round-trip through the Keras config", () => {
  const sgd = new optimizers.SGD({ clipnorm: 1.5, weightDecay: 0.01 });
  const config = sgd.toConfig();
  assert.equal(config.clipnorm, 1.5);
  assert.equal(config.weight_decay, 0.01);
  assert.equal(config.clipvalue, null);
  assert.equal(config.global_clipnorm, null);
  const back = optimizerFromConfig({ class_name: "SGD", config });
  assert.deepEqual([back.clipnorm, back.weightDecay, back.clipvalue, back.globalClipnorm], [
    1.5,
    0.01,
    null,
    null,
  ]);
  const adam = optimizerFromConfig({
    class_name: "Adam",
    config: new optimizers.Adam({ globalClipnorm: 2, amsgrad: true }).toConfig(),
  }) as InstanceType<typeof optimizers.Adam>;
  assert.deepEqual([adam.globalClipnorm, adam.amsgrad], [2, true]);
  assert.throws(
    () =>
      optimizerFromConfig({
        class_name: "Adam",
        config: { ...new optimizers.Adam().toConfig(), use_ema: true },
      }),
    /Shoal does not support use_ema=true/,
  );
});

const MAKE: Record<string, () => Optimizer> = {
  adam: () => new optimizers.Adam({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }),
  sgd: () => new optimizers.SGD({ learningRate: 0.1 }),
  sgdMomentum: () => new optimizers.SGD({ learningRate: 0.1, momentum: 0.9 }),
  sgdNesterov: () => new optimizers.SGD({ learningRate: 0.1, momentum: 0.9, nesterov: true }),
  rmsprop: () => new optimizers.RMSprop({ learningRate: 0.01 }),
  rmspropCenteredMomentum: () =>
    new optimizers.RMSprop({ learningRate: 0.01, momentum: 0.5, centered: true }),
  adamWClipped: () =>
    new optimizers.AdamW({ learningRate: 0.01, weightDecay: 0.1, clipvalue: 0.5, amsgrad: true, name: "aw" }),
};

for (const [name, expected] of Object.entries(KERAS)) {
  Deno.test(`${name}: 3 steps on a flat array match Keras 3`, () => {
    const opt = MAKE[name]!();
    const w = Float32Array.from(W0);
    GRADS.forEach((g, step) => {
      opt.apply(w, Float32Array.from(g));
      assertClose(w, expected[step]!);
    });
    assert.equal(opt.iterations, 3);
  });
}

Deno.test("Adam defaults are Keras's: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7", () => {
  const a = new optimizers.Adam();
  assert.deepEqual([a.learningRate, a.beta1, a.beta2, a.epsilon], [0.001, 0.9, 0.999, 1e-7]);
  const w = Float32Array.from(W0);
  a.apply(w, Float32Array.from(GRADS[0]!));
  assertClose(w, KERAS.adam![0]!);
  assert.equal(new optimizers.SGD().learningRate, 0.01);
  assert.equal(new optimizers.RMSprop().learningRate, 0.001);
});

Deno.test("ExponentialDecay staircase gives 0.01·0.9^floor(step/1000)", () => {
  const s = new optimizers.schedules.ExponentialDecay({
    initialLearningRate: 0.01,
    decaySteps: 1000,
    decayRate: 0.9,
    staircase: true,
  });
  assertClose([0, 999, 1000, 2500].map((t) => s.at(t)), [0.01, 0.01, 0.009, 0.0081], 1e-12);
  const smooth = new optimizers.schedules.ExponentialDecay({
    initialLearningRate: 0.01,
    decaySteps: 1000,
    decayRate: 0.9,
  });
  assertClose([smooth.at(2500)], [0.01 * Math.pow(0.9, 2.5)], 1e-12);
  assert.throws(
    () =>
      new optimizers.schedules.ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 0, decayRate: 0.9 }),
    /decaySteps must be > 0: received 0/,
  );
});

Deno.test("An optimizer with a schedule uses the rate at its iteration count", () => {
  const schedule = new optimizers.schedules.ExponentialDecay({
    initialLearningRate: 0.5,
    decaySteps: 1,
    decayRate: 0.5,
    staircase: true,
  });
  const sgd = new optimizers.SGD({ learningRate: schedule });
  const w = new Float32Array([0]);
  sgd.apply(w, new Float32Array([1])); // lr 0.5
  sgd.apply(w, new Float32Array([1])); // lr 0.25
  assertClose(w, [-0.75]);
  assert.equal(sgd.learningRate, 0.125);
  assert.equal(sgd.schedule, schedule);
});

Deno.test("learningRate is settable, and setting it on a scheduled optimizer says why not", () => {
  const adam = new optimizers.Adam();
  adam.learningRate = 0.01;
  assert.equal(adam.learningRate, 0.01);
  assert.equal((adam.toConfig() as { learning_rate: number }).learning_rate, 0.01);
  assert.throws(() => (adam.learningRate = -1), /must be a finite number >= 0: received -1/);
  const scheduled = new optimizers.Adam({
    learningRate: new optimizers.schedules.ExponentialDecay({
      initialLearningRate: 0.01,
      decaySteps: 10,
      decayRate: 0.9,
    }),
  });
  assert.throws(
    () => (scheduled.learningRate = 0.1),
    /Cannot set the learning rate of an optimizer that uses a LearningRateSchedule/,
  );
});

Deno.test("getOptimizer resolves names case-insensitively and lists valid names for unknown ones", () => {
  assert.ok(getOptimizer("Adam") instanceof optimizers.Adam);
  assert.ok(getOptimizer("sgd") instanceof optimizers.SGD);
  assert.ok(getOptimizer("rmsprop") instanceof optimizers.RMSprop);
  assert.throws(
    () => getOptimizer("adagrad"),
    /Unknown optimizer: 'adagrad'. Use one of: adam, adamw, sgd, rmsprop/,
  );
});

Deno.test("Optimizer configs round-trip through Keras 3 config dicts", () => {
  const adam = new optimizers.Adam({
    learningRate: new optimizers.schedules.ExponentialDecay({
      initialLearningRate: 0.01,
      decaySteps: 1000,
      decayRate: 0.9,
      staircase: true,
    }),
    beta1: 0.8,
  });
  const back = optimizerFromConfig({ class_name: "Adam", config: adam.toConfig() }) as InstanceType<
    typeof optimizers.Adam
  >;
  assert.equal(back.beta1, 0.8);
  assert.equal((back.schedule as InstanceType<typeof optimizers.ExponentialDecay>).staircase, true);
  assert.equal(back.learningRate, 0.01);
  const sgd = optimizerFromConfig({
    class_name: "SGD",
    config: new optimizers.SGD({ momentum: 0.9, nesterov: true }).toConfig(),
  });
  assert.deepEqual([
    (sgd as InstanceType<typeof optimizers.SGD>).momentum,
    (sgd as InstanceType<typeof optimizers.SGD>).nesterov,
  ], [
    0.9,
    true,
  ]);
});

Deno.test("apply rejects gradients of the wrong length with both lengths", () => {
  assert.throws(
    () => new optimizers.SGD().apply(new Float32Array(3), new Float32Array(2)),
    /their length 2 differs from the parameter count 3/,
  );
});

Deno.test("Adam continues from slots set from outside (a loaded checkpoint) as if it never stopped", () => {
  const n = 37;
  const grads = (t: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + t));
  const straight = new optimizers.Adam({ learningRate: 0.01 });
  const w = Float32Array.from({ length: n }, (_, i) => i / n - 0.5);
  for (let t = 0; t < 3; t++) straight.apply(w, grads(t));
  const checkpoint = {
    w: w.slice(),
    slots: straight.slots.map((s) => s.slice()),
    iterations: straight.iterations,
  };
  for (let t = 3; t < 5; t++) straight.apply(w, grads(t));

  const resumed = new optimizers.Adam({ learningRate: 0.01 });
  resumed.slots = checkpoint.slots;
  resumed.iterations = checkpoint.iterations;
  for (let t = 3; t < 5; t++) resumed.apply(checkpoint.w, grads(t));
  assert.deepEqual(checkpoint.w, w);
  assert.deepEqual(resumed.slots, straight.slots);
});

Deno.test("Adam on its resident arrays takes the same steps as on copies, with weight decay and sparse squares", () => {
  const n = 41;
  const grads = (t: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.3 + t));
  const squares = [{
    offset: 8,
    size: 8,
    rowSize: 4,
    rows: Int32Array.of(1),
    values: Float32Array.of(1, 2, 3, 4),
  }];
  const copied = new optimizers.AdamW({ learningRate: 0.01 });
  const w = Float32Array.from({ length: n }, (_, i) => i / n - 0.5);
  const owner = {};
  const inPlace = new optimizers.AdamW({ learningRate: 0.01 });
  const resident = inPlace.residentBuffers(owner, n)!;
  resident.params.set(w);
  for (let t = 0; t < 4; t++) {
    copied.apply(w, grads(t), undefined, squares);
    resident.grads.set(grads(t));
    inPlace.apply(resident.params, resident.grads, undefined, squares);
  }
  assert.deepEqual(resident.params, w);
  assert.deepEqual(inPlace.slots, copied.slots);
  // A second model on the same optimizer gets none: the first one's parameters live there.
  assert.equal(inPlace.residentBuffers({}, n), undefined);
  assert.equal(inPlace.residentBuffers(owner, n)!.params, resident.params);
  // Parameters elsewhere are still updated where they are.
  const other = w.slice();
  const before = resident.params.slice();
  copied.apply(w, grads(9));
  inPlace.apply(other, grads(9));
  assert.deepEqual(other, w);
  assert.deepEqual(resident.params, before, "the owner's parameters are left as they were");
  assert.equal(new optimizers.SGD().residentBuffers(owner, n), undefined);
});

Deno.test("Adam refuses a parameter count its wasm memory cannot hold, naming the optimizers that can", () => {
  const adam = new optimizers.Adam();
  assert.throws(
    () => adam.residentBuffers({}, 300_000_000),
    /Cannot run Adam's update on 300000000 parameters: .* 2 slots in one WebAssembly memory\. Cannot hold 4 arrays .* use SGD or RMSprop/,
  );
});

Deno.test("every optimizer's Keras class name round-trips through optimizerFromConfig", () => {
  for (const make of Object.values(MAKE)) {
    const opt = make();
    const back = optimizerFromConfig({ class_name: opt.className, config: opt.toConfig() });
    assert.equal(back.constructor, opt.constructor);
    assert.deepEqual(back.toConfig(), opt.toConfig());
  }
  assert.throws(
    () => optimizerFromConfig({ class_name: "Adagrad", config: {} }),
    /Unknown optimizer class: 'Adagrad'. Use one of: Adam, AdamW, SGD, RMSprop/,
  );
});

Deno.test("saveOwnVariables stores iterations, learning rate, then slots in Keras's order", () => {
  // Two trainable variables, [2] at offset 0 and [1] at offset 2.
  const trainable = [
    { path: "a/kernel", shape: [2], offset: 0, size: 2 },
    { path: "b/kernel", shape: [1], offset: 2, size: 1 },
  ];
  const rms = new optimizers.RMSprop({ momentum: 0.5, centered: true });
  rms.apply(Float32Array.of(1, 2, 3), Float32Array.of(0.1, 0.2, 0.3));
  const vars = rms.saveOwnVariables(trainable, 3);
  assert.equal(vars.length, rms.ownVariableCount(2));
  assert.deepEqual([...vars[0]!.data], [1n]);
  assert.deepEqual([...vars[1]!.data], [Math.fround(0.001)]);
  // One call per slot kind: velocities of a and b, then momentums, then average gradients.
  const expected = [0, 1, 2].flatMap((s) => [rms.slots[s]!.slice(0, 2), rms.slots[s]!.slice(2, 3)]);
  assert.deepEqual(vars.slice(2).map((v) => v.data), expected);
  // Adam interleaves its two slots per variable: m(a), v(a), m(b), v(b).
  const adam = new optimizers.Adam();
  adam.apply(Float32Array.of(1, 2, 3), Float32Array.of(0.1, 0.2, 0.3));
  const [m, v] = adam.slots;
  assert.deepEqual(adam.saveOwnVariables(trainable, 3).slice(2).map((x) => x.data), [
    m!.slice(0, 2),
    v!.slice(0, 2),
    m!.slice(2, 3),
    v!.slice(2, 3),
  ]);
});

Deno.test("loadOwnVariables restores what saveOwnVariables stored, only when its thunk runs", () => {
  const trainable = [{ path: "a/kernel", shape: [3], offset: 0, size: 3 }];
  for (const [name, make] of Object.entries(MAKE)) {
    const trained = make();
    const w = Float32Array.from(W0);
    for (const g of GRADS) trained.apply(w, Float32Array.from(g));
    const vars = trained.saveOwnVariables(trainable, 3);
    const fresh = make();
    const restore = fresh.loadOwnVariables(vars, trainable, 3, (v) => v.data as Float32Array);
    assert.equal(fresh.iterations, 0, name);
    restore();
    assert.equal(fresh.iterations, 3, name);
    assert.deepEqual(fresh.slots, trained.slots, name);
  }
  const adam = new optimizers.Adam();
  assert.throws(
    () => adam.loadOwnVariables<OptimizerVariable>([], trainable, 3, (v) => v.data as Float32Array),
    /optimizer "adam" as it has 4 variables: received 0/,
  );
});

Deno.test("a fresh optimizer saves zero slots, as Keras's freshly built ones", () => {
  const vars = new optimizers.Adam().saveOwnVariables([{ path: "a", shape: [2], offset: 0, size: 2 }], 2);
  assert.deepEqual(vars.slice(2).map((v) => [...v.data]), [[0, 0], [0, 0]]);
  assert.equal(new optimizers.SGD().slotCount, 0);
  assert.deepEqual(
    new optimizers.SGD().saveOwnVariables([{ path: "a", shape: [2], offset: 0, size: 2 }], 2).length,
    2,
  );
});

Deno.test("squares of a sparse gradient replace g² in Adam's and RMSprop's velocities and in clipnorm, as Keras's TF backend", () => {
  // b/kernel (offset 2) was looked up twice with slices 0.2 and 0.1: gradient 0.3, squares 0.05.
  const g = Float32Array.of(0.1, -0.2, 0.3);
  const squares = [{ offset: 2, size: 1, rowSize: 1, rows: Int32Array.of(0), values: Float32Array.of(0.05) }];
  const adam = new optimizers.Adam({ learningRate: 0.01, amsgrad: true });
  const w = Float32Array.from(W0);
  adam.apply(w, g, TWO_VARIABLES, squares);
  const alpha = 0.01 * Math.sqrt(1 - 0.999) / (1 - 0.9);
  const step = (gi: number, g2: number) => alpha * (0.1 * gi) / (Math.sqrt(0.001 * g2) + 1e-7);
  assertClose(w, [1 - step(0.1, 0.01), -1 - step(-0.2, 0.04), 0.5 - step(0.3, 0.05)]);
  assertClose(adam.slots[1]!, [0.001 * 0.01, 0.001 * 0.04, 0.001 * 0.05], 1e-9);
  assertClose(adam.slots[2]!, adam.slots[1]!, 0);

  const rms = new optimizers.RMSprop({ learningRate: 0.01 });
  const r = Float32Array.from(W0);
  rms.apply(r, g, TWO_VARIABLES, squares);
  const inc = (gi: number, g2: number) => 0.01 * gi / Math.sqrt(0.1 * g2 + 1e-7);
  assertClose(r, [1 - inc(0.1, 0.01), -1 - inc(-0.2, 0.04), 0.5 - inc(0.3, 0.05)]);

  // clipnorm measures b/kernel by its slices, √0.05 (not 0.3), and scales its squares with it.
  const sgd = new optimizers.SGD({ learningRate: 1, clipnorm: 0.2 });
  const s = Float32Array.from(W0);
  sgd.apply(s, g, TWO_VARIABLES, squares);
  const aNorm = Math.hypot(0.1, 0.2), bNorm = Math.sqrt(0.05);
  assertClose(s, [1 - 0.1 * 0.2 / aNorm, -1 + 0.2 * 0.2 / aNorm, 0.5 - 0.3 * 0.2 / bNorm]);
});

Deno.test("squares listing only the looked-up rows update exactly as squares listing every row with zeros", () => {
  // A table of 4 rows of 2 at offset 1 (rows 1 and 3 looked up), between two dense variables.
  const layout = [
    { path: "a/kernel", shape: [1], offset: 0, size: 1 },
    { path: "e/embeddings", shape: [4, 2], offset: 1, size: 8 },
    { path: "b/kernel", shape: [2], offset: 9, size: 2 },
  ];
  const g = Float32Array.of(0.3, 0, 0, 0.25, -0.5, 0, 0, 0.125, 0.75, -0.2, 0.1);
  const sparse = {
    offset: 1,
    size: 8,
    rowSize: 2,
    rows: Int32Array.of(1, 3),
    values: Float32Array.of(0.0390625, 0.15625, 0.0078125, 0.3125),
  };
  const dense = {
    ...sparse,
    rows: Int32Array.of(0, 1, 2, 3),
    values: Float32Array.of(0, 0, 0.0390625, 0.15625, 0, 0, 0.0078125, 0.3125),
  };
  const makers: [string, () => Optimizer][] = [
    ["adam", () => new optimizers.Adam({ learningRate: 0.01 })],
    ["amsgrad", () => new optimizers.Adam({ learningRate: 0.01, amsgrad: true })],
    ["rmsprop", () => new optimizers.RMSprop({ learningRate: 0.01, momentum: 0.5 })],
    ["clipnorm", () => new optimizers.Adam({ learningRate: 0.01, clipnorm: 0.1 })],
    ["globalClipnorm", () => new optimizers.Adam({ learningRate: 0.01, globalClipnorm: 0.1 })],
  ];
  for (const [name, make] of makers) {
    const [a, b] = [make(), make()];
    const wa = Float32Array.from({ length: 11 }, (_, i) => i / 10 - 0.5), wb = wa.slice();
    for (let step = 0; step < 3; step++) {
      a.apply(wa, g, layout, [sparse]);
      b.apply(wb, g, layout, [dense]);
    }
    assert.deepEqual(wa, wb, name);
    a.slots.forEach((slot, k) => assert.deepEqual(slot, b.slots[k], `${name} slot ${k}`));
    assert.notDeepEqual(wa, Float32Array.from({ length: 11 }, (_, i) => i / 10 - 0.5), name);
  }
});

Deno.test("squares with a row outside their table, or rows out of order, are refused naming the row", () => {
  const sq = { offset: 0, size: 4, rowSize: 2, rows: Int32Array.of(2), values: Float32Array.of(1, 1) };
  assert.throws(
    () => new optimizers.Adam().apply(new Float32Array(4), new Float32Array(4), undefined, [sq]),
    /row 2 lies outside the 2 rows of the table at offset 0/,
  );
  const unordered = { ...sq, rows: Int32Array.of(1, 0), values: new Float32Array(4) };
  assert.throws(
    () => new optimizers.RMSprop().apply(new Float32Array(4), new Float32Array(4), undefined, [unordered]),
    /row 0 follows row 1/,
  );
});
