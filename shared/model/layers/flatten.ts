/** `Flatten`: reshapes each sample to one axis. */
import { tf } from "../tf.ts";
import { Layer, type Shape, sizeOf } from "./layer.ts";

export class Flatten extends Layer {
  readonly className = "Flatten";

  computeOutputShape(inputShapes: Shape[]): Shape {
    return [sizeOf(inputShapes[0]!)];
  }

  call(inputs: tf.Tensor[]): tf.Tensor {
    const x = inputs[0]!;
    return tf.reshape(x, [x.shape[0]!, -1]);
  }

  protected layerConfig(): Record<string, unknown> {
    return { data_format: "channels_last" };
  }
}
