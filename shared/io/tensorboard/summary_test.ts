import assert from "node:assert/strict";
import {
  DEFAULT_HISTOGRAM_BUCKETS,
  histogramBuckets,
  histogramValue,
  kerasModelValue,
  scalarValue,
} from "./summary.ts";

function rows(flat: Float64Array): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += 3) out.push([flat[i]!, flat[i + 1]!, flat[i + 2]!]);
  return out;
}

Deno.test("histogramBuckets puts the maximum in the last bucket, as tf.summary.histogram", () => {
  const data = Float32Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(rows(histogramBuckets(data, 3)), [[0, 3, 3], [3, 6, 3], [6, 9, 4]]);
});

Deno.test("histogramBuckets uses 30 buckets by default and counts every element", () => {
  const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
  const r = rows(histogramBuckets(data));
  assert.equal(DEFAULT_HISTOGRAM_BUCKETS, 30);
  assert.equal(r.length, 30);
  assert.equal(r.reduce((s, [, , c]) => s + c!, 0), 1000);
  assert.equal(r[0]![0], Math.min(...data));
  assert.equal(r[29]![1], Math.max(...data));
  for (let b = 1; b < 30; b++) assert.equal(r[b]![0], r[b - 1]![1]);
});

Deno.test("histogramBuckets: one bucket of width 1 for equal values, none for no finite values", () => {
  assert.deepEqual(rows(histogramBuckets([2, 2, 2])), [[1.5, 2.5, 3]]);
  assert.equal(histogramBuckets([]).length, 0);
  assert.equal(histogramBuckets([NaN, Infinity]).length, 0);
  assert.deepEqual(rows(histogramBuckets([1, NaN, 3], 2)), [[1, 2, 1], [2, 3, 1]]);
});

Deno.test("histogramBuckets rejects a bucket count that is not a positive integer", () => {
  assert.throws(
    () => histogramBuckets([1, 2], 0),
    /bucketCount must be a positive integer: current value is 0/,
  );
  assert.throws(() => histogramBuckets([1, 2], 2.5), RangeError);
});

Deno.test("summary values carry the plugin names and tensor types TensorBoard dispatches on", () => {
  const s = scalarValue("epoch_loss", 0.25);
  assert.equal(s.metadata.plugin_data.plugin_name, "scalars");
  assert.equal(s.tensor.dtype, 1);
  assert.equal(new DataView(s.tensor.tensor_content!.buffer).getFloat32(0, true), 0.25);
  const h = histogramValue("dense/kernel/histogram", [1, 2, 3, 4]);
  assert.equal(h.metadata.plugin_data.plugin_name, "histograms");
  assert.equal(h.tensor.dtype, 2);
  assert.deepEqual(h.tensor.tensor_shape.dim, [{ size: 30 }, { size: 3 }]);
  assert.equal(h.tensor.tensor_content!.length, 30 * 3 * 8);
  const k = kerasModelValue("keras", '{"class_name":"Sequential"}');
  assert.equal(k.metadata.plugin_data.plugin_name, "graph_keras_model");
  assert.equal(new TextDecoder().decode(k.metadata.plugin_data.content), "1");
  assert.equal(k.tensor.dtype, 7);
});
