/**
 * `BatchNormalization` over the last axis. In training, unless frozen, it normalizes with the statistics
 * of the whole batch, also when the batch is split over processes: the slices exchange their partial
 * moments before normalizing and their partial gradient sums before back-propagating
 * ({@link SliceExchange}), so N workers compute what one process computes. It reports its slice's
 * statistics ({@link BatchStats}), and where the statistics of all slices meet (the coordinator) it
 * updates its moving averages from the whole batch's ({@link BatchNormalization.updateState}).
 */
import { tf } from "../tf.ts";
import {
  batchNormKernelsAvailable,
  BN_GRAD,
  BN_GRAD_SUMS,
  BN_MOMENTS,
  BN_NORMALIZE,
} from "../backends/kernels/batch_norm.ts";
import {
  type BatchMoments,
  type BatchStatefulLayer,
  type CallContext,
  Layer,
  type LayerOptions,
  type Shape,
  type SliceExchange,
  type WeightSpec,
  WHOLE_BATCH,
} from "./layer.ts";

export interface BatchNormalizationOptions extends LayerOptions {
  /** @default 0.99 */
  momentum?: number;
  /** @default 0.001 */
  epsilon?: number;
  /** @default true */
  center?: boolean;
  /** @default true */
  scale?: boolean;
}

export class BatchNormalization extends Layer implements BatchStatefulLayer {
  readonly className = "BatchNormalization";
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;

  constructor(opts: BatchNormalizationOptions = {}) {
    super(opts);
    this.momentum = opts.momentum ?? 0.99;
    this.epsilon = opts.epsilon ?? 1e-3;
    this.center = opts.center ?? true;
    this.scale = opts.scale ?? true;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(
        `Cannot create BatchNormalization as momentum must be in [0, 1]: received ${this.momentum}`,
      );
    }
    if (!(this.epsilon > 0)) {
      throw new RangeError(
        `Cannot create BatchNormalization as epsilon must be > 0: received ${this.epsilon}`,
      );
    }
  }

  /** A trainable layer normalizes over the whole batch in training; a frozen one runs in inference mode. */
  get exchangesBetweenSlices(): boolean {
    return this.trainable;
  }

  /** Keras's moving averages: `moving = moving * momentum + batch * (1 - momentum)`, per channel. */
  updateState(weights: ReadonlyMap<string, Float32Array>, stats: BatchMoments): void {
    const mean = this.stateWeight(weights, "moving_mean");
    const variance = this.stateWeight(weights, "moving_variance");
    const momentum = this.momentum;
    for (let c = 0; c < stats.mean.length; c++) {
      mean[c] = mean[c]! * momentum + stats.mean[c]! * (1 - momentum);
      variance[c] = variance[c]! * momentum + stats.variance[c]! * (1 - momentum);
    }
  }

  private stateWeight(weights: ReadonlyMap<string, Float32Array>, name: string): Float32Array {
    const weight = weights.get(name);
    if (weight === undefined) {
      throw new RangeError(
        `Cannot update the ${name} of BatchNormalization layer "${this.name}" as it is not among the ` +
          `weights handed over: received ${[...weights.keys()].join(", ") || "none"}`,
      );
    }
    return weight;
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    const channels = inputShapes[0]![inputShapes[0]!.length - 1]!;
    const spec = (name: string, trainable: boolean, init: "ones" | "zeros"): WeightSpec => ({
      name,
      shape: [channels],
      trainable,
      initializer: init,
      regularizer: null,
    });
    const specs: WeightSpec[] = [];
    if (this.scale) specs.push(spec("gamma", true, "ones"));
    if (this.center) specs.push(spec("beta", true, "zeros"));
    specs.push(spec("moving_mean", false, "zeros"), spec("moving_variance", false, "ones"));
    return specs;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const x = inputs[0]!;
    let i = 0;
    const gamma = this.scale ? weights[i++] : undefined;
    const beta = this.center ? weights[i++] : undefined;
    const movingMean = weights[i++]!;
    const movingVariance = weights[i++]!;
    // Keras 3: a frozen BatchNormalization layer (trainable false) runs in inference mode.
    if (!ctx.training || !this.trainable) {
      return tf.batchNorm(x, movingMean, movingVariance, beta, gamma, this.epsilon);
    }
    const channels = x.shape[x.shape.length - 1]!;
    return this.normalizeOverBatch(
      x,
      gamma ?? tf.ones([channels]),
      beta ?? tf.zeros([channels]),
      ctx,
    );
  }

  /**
   * Training-mode normalization with whole-batch statistics and its gradient. Forward: each slice
   * sends (elements per channel, mean, sum of squared deviations), combined in slice order (Chan et
   * al.). Backward: each slice's loss is its own mean, so a slice of n of the batch's N rows holds
   * gradients N/n times the batch loss's; with the slices' row-weighted sums S = Σ n·Σdy and
   * S' = Σ n·Σ(dy·x̂) over M elements per channel, `dx = γ/σ · (dy − S/(n·M) − x̂·S'/(n·M))`, which
   * for one slice is the usual `γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂))`.
   */
  private normalizeOverBatch(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, ctx: CallContext): tf.Tensor {
    const exchange: SliceExchange = ctx.exchange ?? WHOLE_BATCH;
    const whole = exchange === WHOLE_BATCH;
    const channels = x.shape[x.shape.length - 1]!;
    const axes = x.shape.map((_, k) => k).slice(0, -1);
    const rows = x.shape[0]!;
    const elements = x.size / channels;
    const layer = this.name!;
    const epsilon = this.epsilon;
    // The fused passes (backends/kernels/batch_norm.ts) where the backend has them.
    const fused = x.dtype === "float32" && batchNormKernelsAvailable();
    const run = (kernel: string, inputs: tf.NamedTensorMap) =>
      tf.engine().runKernel(kernel, inputs, {}) as tf.Tensor | tf.Tensor[];
    const forward = (xIn: tf.Tensor, gammaIn: tf.Tensor, betaIn: tf.Tensor, save: tf.GradSaveFunc) => {
      const [mean, squares] = fused
        ? run(BN_MOMENTS, { x: xIn }) as [tf.Tensor, tf.Tensor]
        : ((m) => [m, tf.sum(tf.square(tf.sub(xIn, m)), axes)])(tf.mean(xIn, axes));
      const variance = tf.div(squares, elements);
      ctx.batchStats.push({ layer, mean: tf.keep(mean), variance: tf.keep(variance) });
      // A batch computed in one piece needs no exchange and no read-back: its own moments are the
      // batch's (combineMoments of one part gives these values, bit for bit).
      const total = whole
        ? { mean, variance, elements }
        : ((t) => ({ mean: f32(t.mean), variance: f32(t.variance), elements: t.elements }))(
          combineMoments(exchange.gather(countedPart(elements, [mean, squares])), channels),
        );
      const invStd = tf.rsqrt(tf.add(total.variance, epsilon));
      const [xHat, value] = fused
        ? run(BN_NORMALIZE, { x: xIn, mean: total.mean, invStd, gamma: gammaIn, beta: betaIn }) as [
          tf.Tensor,
          tf.Tensor,
        ]
        : ((h) => [h, tf.add(tf.mul(h, gammaIn), betaIn)])(tf.mul(tf.sub(xIn, total.mean), invStd));
      save([xHat, invStd, gammaIn]);
      return {
        value,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [xh, inv, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          const grad = dy as tf.Tensor;
          const [dBeta, dGamma] = fused
            ? run(BN_GRAD_SUMS, { dy: grad, xHat: xh }) as [tf.Tensor, tf.Tensor]
            : [tf.sum(grad, axes), tf.sum(tf.mul(grad, xh), axes)];
          // One piece: Σ rows·Σdy / (rows·M) is Σdy / M, and the same for Σ(dy·x̂), bit for bit.
          const [a, b] = whole ? [tf.div(dBeta, elements), tf.div(dGamma, elements)] : combineGradientSums(
            exchange.gather(countedPart(rows, [dBeta, dGamma])),
            channels,
            rows * total.elements,
          ).map(f32);
          const dx = fused
            ? run(BN_GRAD, { dy: grad, xHat: xh, a: a!, b: b!, gamma: g, invStd: inv }) as tf.Tensor
            : tf.mul(tf.mul(g, inv), tf.sub(tf.sub(grad, a!), tf.mul(xh, b!)));
          return [dx, dGamma, dBeta];
        },
      };
    };
    return tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0])(x, gamma, beta);
  }

  protected layerConfig(): Record<string, unknown> {
    const init = (cls: string) => ({
      module: "keras.initializers",
      class_name: cls,
      config: {},
      registered_name: null,
    });
    return {
      axis: -1,
      momentum: this.momentum,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      beta_initializer: init("Zeros"),
      gamma_initializer: init("Ones"),
      moving_mean_initializer: init("Zeros"),
      moving_variance_initializer: init("Ones"),
      beta_regularizer: null,
      gamma_regularizer: null,
      beta_constraint: null,
      gamma_constraint: null,
      synchronized: false,
    };
  }
}

/** Whole-batch mean and biased variance from per-slice (elements, mean, squared deviations), in f64. */
function combineMoments(
  parts: Float32Array[],
  channels: number,
): { mean: Float64Array; variance: Float64Array; elements: number } {
  checkParts(parts, 1 + 2 * channels);
  const elements = parts.reduce((n, p) => n + p[0]!, 0);
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (const p of parts) sum += p[0]! * p[1 + c]!;
    const m = sum / elements;
    let squares = 0;
    for (const p of parts) {
      const d = p[1 + c]! - m;
      squares += p[1 + channels + c]! + p[0]! * d * d;
    }
    mean[c] = m;
    variance[c] = squares / elements;
  }
  return { mean, variance, elements };
}

/** Per channel, Σ rows·Σdy / scale and Σ rows·Σ(dy·x̂) / scale over per-slice (rows, Σdy, Σ(dy·x̂)). */
function combineGradientSums(
  parts: Float32Array[],
  channels: number,
  scale: number,
): [Float64Array, Float64Array] {
  checkParts(parts, 1 + 2 * channels);
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let s = 0, t = 0;
    for (const p of parts) {
      s += p[0]! * p[1 + c]!;
      t += p[0]! * p[1 + channels + c]!;
    }
    a[c] = s / scale;
    b[c] = t / scale;
  }
  return [a, b];
}

/** A slice's part of an exchange: `count`, then the values of `tensors`, read back in one go. */
function countedPart(count: number, tensors: tf.Tensor[]): Float32Array {
  const values = tf.concat(tensors).dataSync() as Float32Array;
  const part = new Float32Array(1 + values.length);
  part[0] = count;
  part.set(values, 1);
  return part;
}

function f32(values: Float64Array): tf.Tensor1D {
  return tf.tensor1d(Float32Array.from(values), "float32");
}

function checkParts(parts: Float32Array[], length: number): void {
  const bad = parts.findIndex((p) => p.length !== length);
  if (parts.length === 0 || bad >= 0) {
    throw new RangeError(
      `Cannot combine BatchNormalization statistics as every slice must send ${length} values: ` +
        (parts.length === 0 ? "no slice sent any" : `slice ${bad} sent ${parts[bad]!.length}`),
    );
  }
}
