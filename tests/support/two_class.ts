/** Small deterministic data and model for integration tests that train over real workers. */
import { layers, type Model, optimizers, Sequential } from "../../mod.ts";
import type { Layer } from "../../shared/model/mod.ts";

/** Features per sample of {@link twoClassProblem}. */
export const FEATURES = 8;

/** A two-class problem with {@link FEATURES} inputs, the same for every call with the same `n`. */
export function twoClassProblem(n: number) {
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(n * FEATURES), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let j = 0; j < FEATURES; j++) {
      const v = rand() * 2 - 1;
      x[i * FEATURES + j] = v;
      t += v * (j % 3 - 1);
    }
    y[i] = t > 0 ? 1 : 0;
  }
  return { x: { data: x, shape: [n, FEATURES] }, y: { data: y, shape: [n] } };
}

/** The compiled classifier those tests train: Dense 16 → `body` → softmax over 2, seed 7, Adam 0.01. */
export function twoClassModel(body: Layer[] = []): Model {
  const model = new Sequential([
    new layers.Dense(16, { activation: "relu", inputShape: [FEATURES] }),
    ...body,
    new layers.Dense(2, { activation: "softmax" }),
  ], { seed: 7 });
  model.compile({
    optimizer: new optimizers.Adam({ learningRate: 0.01 }),
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  return model;
}
