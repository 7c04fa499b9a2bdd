/**
 * Measures the `wasm-blas` kernels against the stock backends:
 * `deno run -A shared/model/backends/bench_kernels.ts`.
 *
 * Prints the time of one 64x784 · 784x512 matmul on wasm and wasm-blas, and the samples/s of one
 * forward + backward (`tf.grads`) of the MLP 784-512-256-128-10 (relu, softmax cross-entropy) at batch
 * 64 and 256 on cpu, wasm and wasm-blas.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { selectBackend } from "./select.ts";
import { randomValues } from "./test_util.ts";
import { median } from "../../stats.ts";

const BACKENDS = ["cpu", "wasm", "wasm-blas"] as const;
const LAYERS = [784, 512, 256, 128, 10];

/** Median wall time of `run` in ms, after `warmup` runs; `run` must read its result back. */
function time(run: () => void, repeats: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  return median(times);
}

async function benchMatMul(backend: string): Promise<number> {
  await selectBackend(backend as "wasm" | "wasm-blas");
  const a = tf.tensor2d(randomValues(64 * 784, 1), [64, 784]);
  const b = tf.tensor2d(randomValues(784 * 512, 2), [784, 512]);
  // Both backends run kernels synchronously, so the op's wall time is the kernel's; reading the result
  // back (a copy the two backends share) is left out.
  const ms = time(() => tf.dispose(tf.matMul(a, b)), 20);
  tf.dispose([a, b]);
  return ms;
}

async function benchMlp(backend: string, batch: number): Promise<number> {
  await selectBackend(backend as "cpu" | "wasm" | "wasm-blas");
  const params: tf.Tensor[] = [];
  for (let i = 0; i + 1 < LAYERS.length; i++) {
    const fanIn = LAYERS[i]!;
    const weights = tf.tensor2d(randomValues(fanIn * LAYERS[i + 1]!, i), [fanIn, LAYERS[i + 1]!]);
    params.push(tf.mul(weights, Math.sqrt(6 / fanIn)), tf.zeros([LAYERS[i + 1]!]));
    weights.dispose();
  }
  const x = tf.tensor2d(randomValues(batch * 784, 7), [batch, 784]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), "int32"), 10);
  const loss = (...weights: tf.Tensor[]) => {
    let h = x;
    for (let i = 0; i < weights.length; i += 2) {
      h = tf.add(tf.matMul(h, weights[i]!), weights[i + 1]!);
      if (i + 2 < weights.length) h = tf.relu(h);
    }
    return tf.losses.softmaxCrossEntropy(labels, h) as tf.Scalar;
  };
  const step = () =>
    tf.tidy(() => {
      const gradients = tf.grads(loss)(params);
      for (const g of gradients) g.dataSync();
    });
  const repeats = backend === "cpu" ? 3 : 10;
  const ms = time(step, repeats, 1);
  tf.dispose([...params, x, labels]);
  return (batch * 1000) / ms;
}

if (import.meta.main) {
  for (const backend of ["wasm", "wasm-blas"]) {
    console.log(`matmul 64x784·784x512 on ${backend}: ${(await benchMatMul(backend)).toFixed(2)} ms`);
  }
  for (const batch of [64, 256]) {
    for (const backend of BACKENDS) {
      const rate = await benchMlp(backend, batch);
      console.log(
        `MLP 784-512-256-128-10 forward+backward, batch ${batch}, ${backend}: ${rate.toFixed(0)} samples/s`,
      );
    }
  }
}
