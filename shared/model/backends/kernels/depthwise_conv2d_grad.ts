/**
 * `DepthwiseConv2dNativeBackpropInput` and `DepthwiseConv2dNativeBackpropFilter` (NHWC) for the wasm
 * backend, in JavaScript: the wasm backend has the depthwise convolution's forward kernel only, so
 * `DepthwiseConv2D` and `SeparableConv2D` could not train on it. The filter is `[height, width,
 * channels, multiplier]` and output channel `c·multiplier + m` reads input channel `c` through
 * `filter[·, ·, c, m]`, as in tfjs and TensorFlow.
 *
 * @module
 */
import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapView, wasmHeapBackend } from "../wasm_internals.ts";
import type { KernelContext } from "./kernel_context.ts";

type Shape4 = [number, number, number, number];

/** Kernel configs of the depthwise convolution's two gradients for `backendName`; float32 only. */
export function depthwiseConv2dGradKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const backpropInput: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    if (dy.dtype !== "float32" || filter.dtype !== "float32") {
      return fallback(context, DepthwiseConv2dNativeBackpropInput, args, [dy, filter]);
    }
    const attrs = args.attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape as Shape4,
      filter.shape as Shape4,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      true,
    );
    checkDy(dy, info);
    const backend = wasmHeapBackend(args.backend);
    const dx = backend.makeOutput([...attrs.inputShape], "float32");
    // Views after makeOutput: a heap that grows detaches the earlier ones.
    scatterInput(heapView(backend, dy), heapView(backend, filter), heapView(backend, dx), info);
    return dx;
  };
  const backpropFilter: KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    if (dy.dtype !== "float32" || x.dtype !== "float32") {
      return fallback(context, DepthwiseConv2dNativeBackpropFilter, args, [x, dy]);
    }
    const attrs = args.attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      attrs.filterShape as Shape4,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      true,
    );
    checkDy(dy, info);
    const backend = wasmHeapBackend(args.backend);
    const df = backend.makeOutput([...attrs.filterShape], "float32");
    accumulateFilter(heapView(backend, x), heapView(backend, dy), heapView(backend, df), info);
    return df;
  };
  return [
    { kernelName: DepthwiseConv2dNativeBackpropInput, backendName, kernelFunc: backpropInput },
    { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName, kernelFunc: backpropFilter },
  ];
}

function fallback(
  context: KernelContext,
  name: string,
  args: Parameters<KernelFunc>[0],
  inputs: TensorInfo[],
): ReturnType<KernelFunc> {
  const stock = context.fallback(name);
  if (stock === undefined) {
    throw new TypeError(
      `Cannot run ${name} as it supports float32 tensors only: current dtypes are ` +
        inputs.map((t) => t.dtype).join(" and "),
    );
  }
  return stock(args);
}

function checkDy(dy: TensorInfo, info: backend_util.Conv2DInfo): void {
  const expected = info.outShape;
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== expected[i])) {
    throw new RangeError(
      `Cannot compute the depthwise convolution's gradient as dy must have shape [${expected}]: ` +
        `current shape is [${dy.shape}]`,
    );
  }
}

/**
 * Calls `visit(dyPixel, xPixel, tap)` for every output pixel and every filter tap that lands inside
 * the input: the offsets of the output pixel in dy, of the input pixel in x, and of the tap in the
 * filter, each at channel 0.
 */
function forEachTap(
  info: backend_util.Conv2DInfo,
  visit: (dyPixel: number, xPixel: number, tap: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  let dyPixel = 0;
  for (let b = 0; b < batchSize; b++) {
    const image = b * inHeight * inWidth;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, dyPixel += outChannels) {
        for (let fy = 0; fy < filterHeight; fy++) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let fx = 0; fx < filterWidth; fx++) {
            const ix = ox * strideWidth - left + fx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit(dyPixel, (image + iy * inWidth + ix) * inChannels, (fy * filterWidth + fx) * outChannels);
          }
        }
      }
    }
  }
}

/** `dx[pixel, c] = Σ over the taps reaching it of Σ_m filter[tap, c, m] · dy[out, c·M + m]`. */
function scatterInput(
  dy: Float32Array,
  filter: Float32Array,
  dx: Float32Array,
  info: backend_util.Conv2DInfo,
): void {
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  const sums = new Float64Array(dx.length);
  forEachTap(info, (dyPixel, xPixel, tap) => {
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let m = 0; m < multiplier; m++) {
        const k = c * multiplier + m;
        s += filter[tap + k]! * dy[dyPixel + k]!;
      }
      sums[xPixel + c] = sums[xPixel + c]! + s;
    }
  });
  dx.set(sums);
}

/** `df[tap, c, m] = Σ over output pixels of x[input pixel of the tap, c] · dy[out, c·M + m]`. */
function accumulateFilter(
  x: Float32Array,
  dy: Float32Array,
  df: Float32Array,
  info: backend_util.Conv2DInfo,
): void {
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  const sums = new Float64Array(df.length);
  forEachTap(info, (dyPixel, xPixel, tap) => {
    for (let c = 0; c < channels; c++) {
      const v = x[xPixel + c]!;
      for (let m = 0; m < multiplier; m++) {
        const k = c * multiplier + m;
        sums[tap + k] = sums[tap + k]! + v * dy[dyPixel + k]!;
      }
    }
  });
  df.set(sums);
}
