/**
 * Helpers for the backend tests: seeded random data, running one computation on a named backend, and
 * comparing results.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import "npm:@tensorflow/tfjs-backend-cpu@4.22.0";
// The union package registers every op gradient; tfjs-core's own register_all_gradients is ESM with
// extensionless imports, which Deno cannot load.
import "npm:@tensorflow/tfjs@4.22.0";
import { registerWasmBlasBackend } from "./wasm_blas.ts";

/** Registers `wasm-blas` and fails when OpenBLAS is missing, since these tests exist to check it. */
export async function requireWasmBlas(): Promise<void> {
  const registration = await registerWasmBlasBackend();
  if (registration.name !== "wasm-blas") throw new Error(registration.notice);
}

/** Deterministic uniform values in [-1, 1) (mulberry32). */
export function randomValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return values;
}

/** Runs `compute` on `backend` and returns every output's values; tensors made inside are disposed. */
export async function runOn(
  backend: string,
  compute: () => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outputs = tf.tidy(compute);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const values = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  return values;
}

/**
 * The largest `|actual - expected| / (1 + |expected|)` over all elements: a relative error for large
 * values, an absolute one near zero. Throws when the lengths differ.
 */
export function maxError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) {
    throw new RangeError(`Cannot compare results of ${actual.length} and ${expected.length} values`);
  }
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!));
    if (!(error <= worst)) worst = Number.isNaN(error) ? Infinity : error;
  }
  return worst;
}
