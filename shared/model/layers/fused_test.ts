import assert from "node:assert/strict";
import { initBackend, tf } from "../../../mod.ts";
import { type FusedActivation, fusedConv2d, fusedDense } from "./fused.ts";

/** Values in [-1, 1) from a fixed seed, about a fifth of them negative enough for ReLU to cut. */
function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (s = (s * 16807) % 2147483647) / 2147483647 * 2 - 1.2);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [a.dataSync(), b.dataSync()];
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/**
 * The output and the gradients of Σ(out · w) with respect to every input, for `op` and for the same
 * computation in tfjs's separate ops, on the backend in use.
 */
function compare(
  inputs: tf.Tensor[],
  fused: (...t: tf.Tensor[]) => tf.Tensor,
  separate: (...t: tf.Tensor[]) => tf.Tensor,
  what: string,
): void {
  const outputs = [fused, separate].map((op) => op(...inputs));
  const w = tf.tensor(values(outputs[0]!.size, 99), outputs[0]!.shape);
  const grads = [fused, separate].map((op) =>
    tf.grads((...t: tf.Tensor[]) => tf.sum(tf.mul(op(...t), w)))(inputs)
  );
  assert.equal(maxAbsDiff(outputs[0]!, outputs[1]!), 0, `${what}: outputs`);
  grads[0]!.forEach((g, i) =>
    assert.equal(maxAbsDiff(g, grads[1]![i]!), 0, `${what}: gradient of input ${i}`)
  );
  tf.dispose([...outputs, w, ...grads.flat()]);
}

// The plain cpu backend first: the wasm-blas backend stays selected after this file.
for (const backend of ["cpu", "wasm-blas"] as const) {
  Deno.test(`${backend}: fused Dense gives tfjs's separate ops' output and gradients, value for value`, async () => {
    await initBackend(backend);
    for (const [rows, inDim, units] of [[1, 1, 1], [5, 7, 3], [64, 33, 17]]) {
      for (const activation of ["relu", "linear"] as FusedActivation[]) {
        for (const withBias of [true, false]) {
          const x = tf.tensor2d(values(rows * inDim, 1), [rows, inDim]);
          const kernel = tf.tensor2d(values(inDim * units, 2), [inDim, units]);
          const bias = tf.tensor1d(values(units, 3));
          const inputs = withBias ? [x, kernel, bias] : [x, kernel];
          compare(
            inputs,
            (a, k, b) => fusedDense(a as tf.Tensor2D, k as tf.Tensor2D, b, activation),
            (a, k, b) => {
              const z = tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D);
              const pre = b ? tf.add(z, b) : z;
              return activation === "relu" ? tf.relu(pre) : pre;
            },
            `${rows}x${inDim}→${units} ${activation}${withBias ? " with bias" : ""}`,
          );
          tf.dispose([x, kernel, bias]);
        }
      }
    }
  });

  Deno.test(`${backend}: fused Conv2D gives tfjs's separate ops' output and gradients, value for value`, async () => {
    await initBackend(backend);
    const cases: { x: number[]; k: number[]; strides: [number, number]; pad: "valid" | "same" }[] = [
      { x: [2, 7, 9, 3], k: [3, 3, 3, 4], strides: [1, 1], pad: "valid" },
      { x: [3, 8, 5, 2], k: [2, 3, 2, 5], strides: [2, 1], pad: "same" },
      { x: [1, 5, 5, 1], k: [1, 1, 1, 2], strides: [2, 2], pad: "valid" },
    ];
    for (const c of cases) {
      for (const activation of ["relu", "linear"] as FusedActivation[]) {
        for (const withBias of [true, false]) {
          const x = tf.tensor4d(
            values(c.x.reduce((a, b) => a * b), 4),
            c.x as [number, number, number, number],
          );
          const filter = tf.tensor4d(
            values(c.k.reduce((a, b) => a * b), 5),
            c.k as [number, number, number, number],
          );
          const bias = tf.tensor1d(values(c.k[3]!, 6));
          const inputs = withBias ? [x, filter, bias] : [x, filter];
          compare(
            inputs,
            (a, f, b) =>
              fusedConv2d(a as tf.Tensor4D, f as tf.Tensor4D, b, {
                strides: c.strides,
                pad: c.pad,
                activation,
              }),
            (a, f, b) => {
              const z = tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad);
              const pre = b ? tf.add(z, b) : z;
              return activation === "relu" ? tf.relu(pre) : pre;
            },
            `x ${c.x} filter ${c.k} strides ${c.strides} ${c.pad} ${activation}${
              withBias ? " with bias" : ""
            }`,
          );
          tf.dispose([x, filter, bias]);
        }
      }
    }
  });
}
