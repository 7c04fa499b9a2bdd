import assert from "node:assert/strict";
import { Input, layers, tf } from "../../../mod.ts";
import type { CallContext } from "./layer.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/**
 * A direct convolution (cross-correlation, as TensorFlow) of one HWC image with an HWIO kernel. "same"
 * pads like TensorFlow: total padding max((out-1)·stride + k - size, 0), the smaller half before.
 */
function handConv(
  x: number[][][],
  k: number[][][][],
  bias: number[],
  stride: number,
  padding: "valid" | "same",
): number[] {
  const [h, w, kh, kw] = [x.length, x[0]!.length, k.length, k[0]!.length];
  const outH = padding === "same" ? Math.ceil(h / stride) : Math.floor((h - kh) / stride) + 1;
  const outW = padding === "same" ? Math.ceil(w / stride) : Math.floor((w - kw) / stride) + 1;
  const padTop = padding === "same" ? Math.floor(Math.max((outH - 1) * stride + kh - h, 0) / 2) : 0;
  const padLeft = padding === "same" ? Math.floor(Math.max((outW - 1) * stride + kw - w, 0) / 2) : 0;
  const out: number[] = [];
  for (let i = 0; i < outH; i++) {
    for (let j = 0; j < outW; j++) {
      for (let f = 0; f < bias.length; f++) {
        let s = bias[f]!;
        for (let a = 0; a < kh; a++) {
          for (let b = 0; b < kw; b++) {
            const r = i * stride + a - padTop, c = j * stride + b - padLeft;
            if (r < 0 || r >= h || c < 0 || c >= w) continue;
            x[r]![c]!.forEach((v, ch) => s += v * k[a]![b]![ch]![f]!);
          }
        }
        out.push(s);
      }
    }
  }
  return out;
}

// The 3x3 image 1..9 and the 2x2 kernel [[1, 2], [3, 4]], one channel.
const IMAGE = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
const KERNEL = [[1, 2], [3, 4]];

function conv(
  filters: number,
  size: number,
  opts: ConstructorParameters<typeof layers.Conv2D>[2],
  shape: number[],
) {
  const layer = new layers.Conv2D(filters, size, opts);
  const out = layer.apply(new Input({ shape }));
  return { layer, shape: out.shape };
}

Deno.test("Conv2D valid on a 3x3 image: each output is the window's dot product with the kernel", () => {
  const { layer, shape } = conv(1, 2, {}, [3, 3, 1]);
  assert.deepEqual(shape, [2, 2, 1]);
  assert.deepEqual(layer.weightSpecs.map((w) => [w.name, w.shape]), [["kernel", [2, 2, 1, 1]], ["bias", [
    1,
  ]]]);
  const x = tf.tensor4d(IMAGE.flat(), [1, 3, 3, 1]);
  const y = layer.call([x], [tf.tensor4d(KERNEL.flat(), [2, 2, 1, 1]), tf.tensor1d([0.5])], context());
  // 1·1+2·2+4·3+5·4 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77; plus the bias 0.5.
  assertClose(y.dataSync(), [37.5, 47.5, 67.5, 77.5]);
});

Deno.test("Conv2D same on a 3x3 image pads after (TensorFlow's rule for an even kernel)", () => {
  const { layer, shape } = conv(1, 2, { padding: "same", useBias: false }, [3, 3, 1]);
  assert.deepEqual(shape, [3, 3, 1]);
  const x = tf.tensor4d(IMAGE.flat(), [1, 3, 3, 1]);
  const y = layer.call([x], [tf.tensor4d(KERNEL.flat(), [2, 2, 1, 1])], context());
  assertClose(y.dataSync(), [37, 47, 3 + 2 * 0 + 6 * 3, 67, 77, 6 + 9 * 3, 7 + 8 * 2, 8 + 9 * 2, 9]);
});

Deno.test("Conv2D output shapes and values match a hand convolution for strides and padding", () => {
  // A 5x5 image with 2 channels, 3 filters of 3x3.
  const x = [...Array(5)].map((_, i) =>
    [...Array(5)].map((_, j) => [Math.sin(i + 2 * j), Math.cos(3 * i - j)])
  );
  const k = [...Array(3)].map((_, a) =>
    [...Array(3)].map((_, b) =>
      [...Array(2)].map((_, c) => [...Array(3)].map((_, f) => ((a * 7 + b * 5 + c * 3 + f) % 5) - 2))
    )
  );
  const bias = [0.1, -0.2, 0.3];
  for (
    const [stride, padding, expectedShape] of [
      [1, "valid", [3, 3, 3]],
      [2, "valid", [2, 2, 3]],
      [1, "same", [5, 5, 3]],
      [2, "same", [3, 3, 3]],
    ] as const
  ) {
    const { layer, shape } = conv(3, 3, { strides: stride, padding, activation: "relu" }, [5, 5, 2]);
    assert.deepEqual(shape, expectedShape, `${padding} stride ${stride}`);
    const y = layer.call([tf.tensor4d(x.flat(2), [1, 5, 5, 2])], [
      tf.tensor4d(k.flat(3), [3, 3, 2, 3]),
      tf.tensor1d(bias),
    ], context());
    assert.deepEqual(y.shape, [1, ...expectedShape]);
    assertClose(y.dataSync(), handConv(x, k, bias, stride, padding).map((v) => Math.max(0, v)));
  }
});

Deno.test("Conv2D rejects inputs that are not HWC images, showing the shape and the fix", () => {
  assert.throws(
    () => new layers.Conv2D(4, 3, { name: "conv" }).apply(new Input({ shape: [28, 28] })),
    /expected ndim=4 \(batch, height, width, channels\), found ndim=3. Full shape received: \[null,28,28\]. Reshape images to \[n, height, width, channels\]/,
  );
  assert.throws(() => new layers.Conv2D(0, 3), /filters must be a positive integer: received 0/);
  assert.throws(
    () => new layers.Conv2D(2, 3, { strides: 0 }),
    /strides must be positive integers: received 0/,
  );
});
