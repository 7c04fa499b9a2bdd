/**
 * Builders for `Summary.Value`s in the form TF2 `tf.summary` writes them: a tensor plus
 * `metadata.plugin_data.plugin_name`, which tells TensorBoard which dashboard reads the value.
 *
 * @module
 */

import { DataClass, DataType, type SummaryValueObject } from "./event_proto.ts";

/** Bucket count of `tf.summary.histogram` (`tensorboard/plugins/histogram/summary_v2.py`). */
export const DEFAULT_HISTOGRAM_BUCKETS = 30;

const EMPTY = new Uint8Array(0);

function littleEndianFloat64(values: Float64Array): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, true));
  return out;
}

/**
 * A scalar for TensorBoard's Scalars dashboard: a float32 scalar tensor with plugin `scalars`
 * (as `tf.summary.scalar`).
 */
export function scalarValue(tag: string, value: number): SummaryValueObject {
  const content = new Uint8Array(4);
  new DataView(content.buffer).setFloat32(0, value, true);
  return {
    tag,
    metadata: {
      plugin_data: { plugin_name: "scalars", content: EMPTY },
      data_class: DataClass.DATA_CLASS_SCALAR,
    },
    tensor: { dtype: DataType.DT_FLOAT, tensor_shape: { dim: [] }, tensor_content: content },
  };
}

/**
 * Buckets `data` as `tf.summary.histogram` does: `bucketCount` equal-width buckets from min to
 * max, each value in bucket `min(floor((x - min) / width), bucketCount - 1)`. If all values are
 * equal there is one bucket `[x - 0.5, x + 0.5]`; with no values there is none. Non-finite values
 * (NaN, ±Infinity) are left out.
 *
 * @returns `k` rows of `[leftEdge, rightEdge, count]`, flattened (length `3k`).
 */
export function histogramBuckets(
  data: ArrayLike<number>,
  bucketCount: number = DEFAULT_HISTOGRAM_BUCKETS,
): Float64Array {
  if (!Number.isInteger(bucketCount) || bucketCount < 1) {
    throw new RangeError(
      `Cannot bucket a histogram as bucketCount must be a positive integer: current value is ${bucketCount}`,
    );
  }
  let min = Infinity;
  let max = -Infinity;
  let finite = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!Number.isFinite(x)) continue;
    finite++;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (finite === 0) return new Float64Array(0);
  const range = max - min;
  if (range === 0) return Float64Array.of(min - 0.5, min + 0.5, finite);

  const width = range / bucketCount;
  const counts = new Float64Array(bucketCount);
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!Number.isFinite(x)) continue;
    counts[Math.min(Math.floor((x - min) / width), bucketCount - 1)]! += 1;
  }
  const rows = new Float64Array(bucketCount * 3);
  const step = range / bucketCount;
  for (let b = 0; b < bucketCount; b++) {
    rows[b * 3] = min + b * step;
    rows[b * 3 + 1] = b === bucketCount - 1 ? max : min + (b + 1) * step;
    rows[b * 3 + 2] = counts[b]!;
  }
  return rows;
}

/**
 * A histogram for TensorBoard's Histograms and Distributions dashboards: a `[k, 3]` float64
 * tensor of `[leftEdge, rightEdge, count]` rows with plugin `histograms` (as
 * `tf.summary.histogram`).
 */
export function histogramValue(
  tag: string,
  data: ArrayLike<number>,
  bucketCount: number = DEFAULT_HISTOGRAM_BUCKETS,
): SummaryValueObject {
  const rows = histogramBuckets(data, bucketCount);
  return {
    tag,
    metadata: {
      plugin_data: { plugin_name: "histograms", content: EMPTY },
      data_class: DataClass.DATA_CLASS_TENSOR,
    },
    tensor: {
      dtype: DataType.DT_DOUBLE,
      tensor_shape: { dim: [{ size: rows.length / 3 }, { size: 3 }] },
      tensor_content: littleEndianFloat64(rows),
    },
  };
}

/**
 * A Keras model config for TensorBoard's Graphs dashboard ("conceptual graph"): a scalar string
 * tensor holding the model's JSON with plugin `graph_keras_model`, content `"1"` (as Keras's
 * `keras_model_summary`, tag `"keras"`).
 */
export function kerasModelValue(tag: string, modelJson: string): SummaryValueObject {
  return {
    tag,
    metadata: { plugin_data: { plugin_name: "graph_keras_model", content: new TextEncoder().encode("1") } },
    tensor: {
      dtype: DataType.DT_STRING,
      tensor_shape: { dim: [] },
      string_val: [new TextEncoder().encode(modelJson)],
    },
  };
}
