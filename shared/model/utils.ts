/** Keras `utils`: `toCategorical`. */
import { tf } from "./tf.ts";

/** One-hot encodes integer class labels (Keras `to_categorical`). */
export function toCategorical(y: tf.Tensor | number[], numClasses?: number): tf.Tensor2D {
  const ids = y instanceof tf.Tensor ? Array.from(y.dataSync()) : y;
  const classes = numClasses ?? Math.max(...ids) + 1;
  ids.forEach((v, i) => {
    if (!(Number.isInteger(v) && v >= 0 && v < classes)) {
      throw new RangeError(
        `Cannot one-hot encode label ${v} (sample ${i}) with numClasses=${classes}: labels must be integers in [0, ${classes})`,
      );
    }
  });
  return tf.oneHot(tf.tensor1d(ids, "int32"), classes).toFloat() as tf.Tensor2D;
}
