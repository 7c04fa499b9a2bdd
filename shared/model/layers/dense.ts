/** `Dense`: `activation(dot(x, kernel) + bias)` on the last axis. */
import { tf } from "../tf.ts";
import { fusedDense } from "./fused.ts";
import {
  type CallContext,
  formatShape,
  kernelAndBias,
  KernelLayer,
  type KernelLayerOptions,
  type Shape,
  type WeightSpec,
} from "./layer.ts";

/** Options of {@link Dense}. */
export type DenseOptions = KernelLayerOptions;

export class Dense extends KernelLayer {
  readonly className = "Dense";
  readonly units: number;

  constructor(units: number, opts: DenseOptions = {}) {
    super(opts);
    if (!Number.isInteger(units) || units <= 0) {
      throw new RangeError(
        `Cannot create a Dense layer as units must be a positive integer: received ${units}`,
      );
    }
    this.units = units;
  }

  override checkInputs(inputShapes: Shape[]): void {
    const shape = inputShapes[0]!;
    if (this.built) {
      const expected = this.weightSpecs[0]!.shape[0]!;
      if (shape[shape.length - 1] !== expected || shape.length !== this.builtInputShapes[0]!.length) {
        throw new RangeError(
          `Input 0 of layer "${this.name}" is incompatible with the layer: expected axis -1 of input shape to ` +
            `have value ${expected}, but received input with shape ${formatShape(shape)}. ` +
            (shape.length > 1
              ? `Flatten the data first (x.reshape([-1, ${expected}])) or put a Flatten layer before "${this.name}".`
              : `Give the first layer the per-sample shape of the data (inputShape: [${shape.join(", ")}]).`),
        );
      }
    }
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const inDim = inputShapes[0]![inputShapes[0]!.length - 1]!;
    return kernelAndBias([inDim, this.units], this.units, this);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return [...inputShapes[0]!.slice(0, -1), this.units];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    let x = inputs[0]!;
    const outShape = [...x.shape.slice(0, -1), this.units];
    if (x.rank > 2) x = tf.reshape(x, [-1, x.shape[x.rank - 1]!]);
    const kernel = weights[0] as tf.Tensor2D;
    const bias = this.useBias ? weights[1] : undefined;
    let y: tf.Tensor;
    if (this.activation === "relu" || this.activation === "linear") {
      y = fusedDense(x as tf.Tensor2D, kernel, bias, this.activation);
    } else {
      y = this.biasAndActivation(
        tf.matMul(x as tf.Tensor2D, kernel),
        weights,
        ctx,
        outShape.length !== 2 ? outShape : undefined,
      );
    }
    return outShape.length !== 2 ? tf.reshape(y, outShape) : y;
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      units: this.units,
      ...this.kernelConfig(),
      kernel_constraint: null,
      bias_constraint: null,
      quantization_config: null,
    };
  }
}
