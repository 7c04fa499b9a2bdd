/**
 * Keras's `sample_weight` and `class_weight` for `fit` and `evaluate`. Keras reduces a weighted loss
 * with `sum_over_batch_size`: Σ wᵢ·lossᵢ / batch size (not / Σ wᵢ); compiled `metrics` stay
 * unweighted. A weight travels with its row as one more column of the labels, so every pool and
 * every worker receives it through the same data path as the labels; the engine takes it off again
 * (`EngineSpec.weightedLabels`).
 *
 * @module
 */
import { type ArrayData, type DataLike, type Dataset, toDataset } from "./data.ts";

/** `fit`'s weighting options, as Keras names them. */
export interface WeightOptions {
  /** One weight per training sample (shape [n] or [n, 1]). */
  sampleWeight?: DataLike;
  /**
   * A weight per class index, applied to the training samples of that class (Keras: the label, its
   * argmax for one-hot labels, rounded for one value per sample); classes not listed weigh 1.
   */
  classWeight?: Readonly<Record<number, number>>;
}

/**
 * The weight of each row of `ds`, or null when none is asked for. Throws a RangeError naming the
 * option, the value and the fix when it does not fit the data.
 */
export function sampleWeightsOf(ds: Dataset, opts: WeightOptions, call: string): Float32Array | null {
  if (opts.sampleWeight !== undefined && opts.classWeight !== undefined) {
    throw new RangeError(
      `Cannot ${call} with both sampleWeight and classWeight (as Keras): pass one, e.g. fold the class ` +
        "weights into sampleWeight",
    );
  }
  if (ds.source && (opts.sampleWeight !== undefined || opts.classWeight !== undefined)) {
    throw new RangeError(
      `Cannot ${call} a file-backed dataset with sampleWeight or classWeight as its rows are not held here: ` +
        "pass the data as arrays",
    );
  }
  if (opts.sampleWeight !== undefined) return fromSampleWeight(opts.sampleWeight, ds.length, call);
  if (opts.classWeight !== undefined) return fromClassWeight(opts.classWeight, ds, call);
  return null;
}

function fromSampleWeight(value: DataLike, rows: number, call: string): Float32Array {
  const w = toDataset(value, null).inputs[0]!;
  const perRow = w.shape.slice(1).reduce((a, b) => a * b, 1);
  if (w.shape[0] !== rows || perRow !== 1) {
    throw new RangeError(
      `Cannot ${call} with sampleWeight of shape [${w.shape}] as it needs one weight per sample: ` +
        `pass shape [${rows}] (or [${rows}, 1])`,
    );
  }
  for (let i = 0; i < w.data.length; i++) {
    if (!Number.isFinite(w.data[i]!)) {
      throw new RangeError(
        `Cannot ${call} with sampleWeight ${w.data[i]} at sample ${i}: weights must be finite`,
      );
    }
  }
  return Float32Array.from(w.data);
}

/** Keras `class_weight_to_sample_weights`: argmax of one-hot labels, else the rounded label. */
function fromClassWeight(
  classWeight: Readonly<Record<number, number>>,
  ds: Dataset,
  call: string,
): Float32Array {
  for (const [key, weight] of Object.entries(classWeight)) {
    if (!Number.isInteger(Number(key)) || !Number.isFinite(weight)) {
      throw new RangeError(
        `Cannot ${call} with classWeight {${key}: ${weight}}: keys must be class indices and weights finite numbers`,
      );
    }
  }
  const y = ds.y;
  if (!y) throw new RangeError(`Cannot ${call} with classWeight without labels (y)`);
  const width = y.shape.slice(1).reduce((a, b) => a * b, 1);
  if (y.shape.length > 2) {
    throw new RangeError(
      `Cannot ${call} with classWeight for labels of shape [${y.shape}]: class weights need one label per sample`,
    );
  }
  const weights = new Float32Array(ds.length);
  for (let i = 0; i < ds.length; i++) {
    let cls: number;
    if (width === 1) cls = Math.round(y.data[i]!);
    else {
      cls = 0;
      for (let c = 1; c < width; c++) if (y.data[i * width + c]! > y.data[i * width + cls]!) cls = c;
    }
    weights[i] = classWeight[cls] ?? 1;
  }
  return weights;
}

/** `ds` with each row's weight appended to its labels (labels flattened to [n, size + 1]). */
export function withWeightColumn(ds: Dataset, weights: Float32Array | null): Dataset {
  const y = ds.y;
  if (!y) throw new RangeError("Cannot weigh samples without labels (y)");
  const size = y.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(ds.length * (size + 1));
  for (let i = 0; i < ds.length; i++) {
    data.set(y.data.subarray(i * size, (i + 1) * size), i * (size + 1));
    data[i * (size + 1) + size] = weights ? weights[i]! : 1;
  }
  const weighted: ArrayData = { data, shape: [ds.length, size + 1] };
  return { ...ds, y: weighted };
}
