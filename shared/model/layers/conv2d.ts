/** `Conv2D` on channels-last images: `activation(conv2d(x, kernel) + bias)`. */
import { tf } from "../tf.ts";
import { fusedConv2d } from "./fused.ts";
import {
  type CallContext,
  formatShape,
  kernelAndBias,
  KernelLayer,
  type KernelLayerOptions,
  type Shape,
  type WeightSpec,
} from "./layer.ts";

export interface Conv2DOptions extends KernelLayerOptions {
  /** @default 1 */
  strides?: number | [number, number];
  /** @default "valid" */
  padding?: "valid" | "same";
  /** @default 1 */
  dilationRate?: number | [number, number];
}

function pair(v: number | [number, number], what: string): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : v;
  if (!p.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`Cannot create a Conv2D layer as ${what} must be positive integers: received ${v}`);
  }
  return p;
}

export class Conv2D extends KernelLayer {
  readonly className = "Conv2D";
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: "valid" | "same";
  readonly dilationRate: [number, number];

  constructor(filters: number, kernelSize: number | [number, number], opts: Conv2DOptions = {}) {
    super(opts);
    if (!Number.isInteger(filters) || filters <= 0) {
      throw new RangeError(
        `Cannot create a Conv2D layer as filters must be a positive integer: received ${filters}`,
      );
    }
    this.filters = filters;
    this.kernelSize = pair(kernelSize, "kernelSize");
    this.strides = pair(opts.strides ?? 1, "strides");
    this.dilationRate = pair(opts.dilationRate ?? 1, "dilationRate");
    this.padding = opts.padding ?? "valid";
    if (this.padding !== "valid" && this.padding !== "same") {
      throw new TypeError(
        `Cannot create a Conv2D layer as padding must be "valid" or "same": received ${opts.padding}`,
      );
    }
  }

  override checkInputs(inputShapes: Shape[]): void {
    const s = inputShapes[0]!;
    this.expectRank(s, 4, {
      dims: "batch, height, width, channels",
      fix: "Reshape images to [n, height, width, channels], e.g. x.reshape([-1, 28, 28, 1]).",
    });
    if (this.built && s[2] !== this.weightSpecs[0]!.shape[2]) {
      throw new RangeError(
        `Input 0 of layer "${this.name}" is incompatible with the layer: expected axis -1 of input shape to have ` +
          `value ${this.weightSpecs[0]!.shape[2]}, but received input with shape ${formatShape(s)}`,
      );
    }
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    return kernelAndBias([...this.kernelSize, inputShapes[0]![2]!, this.filters], this.filters, this);
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const [h, w] = inputShapes[0]!;
    const out = (size: number, i: 0 | 1) => {
      if (this.padding === "same") return Math.ceil(size / this.strides[i]);
      const k = (this.kernelSize[i] - 1) * this.dilationRate[i] + 1;
      return Math.floor((size - k) / this.strides[i]) + 1;
    };
    return [out(h!, 0), out(w!, 1), this.filters];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const x = inputs[0] as tf.Tensor4D;
    const filter = weights[0] as tf.Tensor4D;
    // Bias and ReLU in the convolution's own pass (the kernel's epilogue), as Dense does; a dilated
    // convolution's gradient is tfjs's own.
    const undilated = this.dilationRate.every((d) => d === 1);
    if (undilated && (this.activation === "relu" || this.activation === "linear")) {
      return fusedConv2d(x, filter, this.useBias ? weights[1] : undefined, {
        strides: this.strides,
        pad: this.padding,
        activation: this.activation,
      });
    }
    const z: tf.Tensor = tf.conv2d(x, filter, this.strides, this.padding, "NHWC", this.dilationRate);
    return this.biasAndActivation(z, weights, ctx);
  }

  protected layerConfig(): Record<string, unknown> {
    return {
      filters: this.filters,
      kernel_size: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      data_format: "channels_last",
      dilation_rate: this.dilationRate,
      groups: 1,
      ...this.kernelConfig(),
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    };
  }
}
