/**
 * `keras.datasets.mnist.load_data()` for examples that must also run offline: MNIST when it is cached
 * or downloadable, else Fashion-MNIST (same shapes and label range) with a one-line notice.
 */
import { datasets, type tf } from "../mod.ts";

/** `[[xTrain, yTrain], [xTest, yTest]]` of MNIST, or of Fashion-MNIST when MNIST cannot be loaded. */
export async function loadMnist(): Promise<[[tf.Tensor, tf.Tensor], [tf.Tensor, tf.Tensor]]> {
  try {
    return await datasets.mnist.loadData();
  } catch (e) {
    const reason = e instanceof Error ? e.message.split(/(?<=\.) /)[0] : String(e);
    console.log(`Note: MNIST is not available (${reason}); using Fashion-MNIST instead.`);
    return await datasets.fashionMnist.loadData();
  }
}
