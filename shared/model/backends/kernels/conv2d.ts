/**
 * `Conv2D`, `FusedConv2D`, `Conv2DBackpropInput` and `Conv2DBackpropFilter` (NHWC) for the wasm backend:
 * im2col (or col2im) in JavaScript and one `cblas_sgemm` per chunk of images.
 *
 * @module
 */
import type {
  backend_util as BackendUtil,
  Conv2DAttrs,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  FusedConv2DAttrs,
  KernelConfig,
  KernelFunc,
  NamedTensorInfoMap,
  TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { checkActivation, type Epilogue, runEpilogue } from "./epilogue.ts";
import { heapOffset, heapView, type WasmHeapBackend, wasmHeapBackend } from "../wasm_internals.ts";
import { geometryOf, type HeapKernels } from "../../simd/heap_kernels.ts";
import { heapKernelsOf } from "./heap_simd.ts";
import type { KernelContext } from "./kernel_context.ts";
import { Scratch } from "./scratch.ts";

type ConvInfo = BackendUtil.Conv2DInfo;
type Shape4 = [number, number, number, number];

/** Largest im2col buffer, in floats, before the batch is split into chunks of images. */
const MAX_COLUMN_FLOATS = 1 << 22;

/** Kernel configs of the 2-D convolution kernels for `backendName`. */
export function conv2dKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const scratch = new Scratch();
  const conv2d: KernelFunc = (args) => {
    const { x, filter } = args.inputs as NamedTensorInfoMap & { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as Conv2DAttrs;
    if (!supported(x, filter, attrs.dataFormat)) return delegate(context, Conv2D, args);
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filter.shape as Shape4,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return forward(context, scratch, wasmHeapBackend(args.backend), x, filter, info, {
      activation: "linear",
    });
  };
  const fusedConv2d: KernelFunc = (args) => {
    const inputs = args.inputs as NamedTensorInfoMap & {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as FusedConv2DAttrs;
    if (!supported(inputs.x, inputs.filter, attrs.dataFormat)) return delegate(context, FusedConv2D, args);
    const info = backend_util.computeConv2DInfo(
      inputs.x.shape as Shape4,
      inputs.filter.shape as Shape4,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const epilogue: Epilogue = { activation: checkActivation(FusedConv2D, attrs.activation) };
    if (inputs.bias !== undefined) epilogue.bias = inputs.bias;
    if (inputs.preluActivationWeights !== undefined) epilogue.prelu = inputs.preluActivationWeights;
    if (attrs.leakyreluAlpha !== undefined) epilogue.leakyreluAlpha = attrs.leakyreluAlpha;
    return forward(
      context,
      scratch,
      wasmHeapBackend(args.backend),
      inputs.x,
      inputs.filter,
      info,
      epilogue,
    );
  };
  const backpropInput: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as NamedTensorInfoMap & { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    if (!supported(dy, filter, attrs.dataFormat)) return delegate(context, Conv2DBackpropInput, args);
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as Shape4,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return gradInput(context, scratch, wasmHeapBackend(args.backend), dy, filter, info);
  };
  const backpropFilter: KernelFunc = (args) => {
    const { x, dy } = args.inputs as NamedTensorInfoMap & { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
    if (!supported(x, dy, attrs.dataFormat)) return delegate(context, Conv2DBackpropFilter, args);
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return gradFilter(context, scratch, wasmHeapBackend(args.backend), x, dy, info);
  };
  return [
    { kernelName: Conv2D, backendName, kernelFunc: conv2d },
    { kernelName: FusedConv2D, backendName, kernelFunc: fusedConv2d },
    { kernelName: Conv2DBackpropInput, backendName, kernelFunc: backpropInput },
    { kernelName: Conv2DBackpropFilter, backendName, kernelFunc: backpropFilter },
  ];
}

function supported(a: TensorInfo, b: TensorInfo, dataFormat: string): boolean {
  return a.dtype === "float32" && b.dtype === "float32" && dataFormat === "NHWC";
}

function delegate(context: KernelContext, kernelName: string, args: Parameters<KernelFunc>[0]) {
  const stock = context.fallback(kernelName);
  if (stock === undefined) {
    throw new TypeError(
      `Cannot run ${kernelName} as it supports float32 NHWC inputs only and the wasm backend has no ` +
        `${kernelName} to fall back to: use dataFormat "NHWC" and float32 tensors`,
    );
  }
  return stock(args);
}

/** Whether the convolution reads each input pixel once, in order (1x1 filter, stride 1, no padding). */
function isPointwise(info: ConvInfo): boolean {
  const pad = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && pad.top === 0 && pad.left === 0 && pad.bottom === 0 && pad.right === 0;
}

/** Runs of at least this many floats are copied with `set` (a memcpy) instead of a loop. */
const COPY_RUN = 16;

/** Images per im2col chunk, so that a chunk's columns stay under {@link MAX_COLUMN_FLOATS}. */
function imagesPerChunk(info: ConvInfo): number {
  const perImage = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth * info.inChannels;
  return Math.max(1, Math.min(info.batchSize, Math.floor(MAX_COLUMN_FLOATS / Math.max(1, perImage))));
}

function forward(
  context: KernelContext,
  scratch: Scratch,
  backend: WasmHeapBackend,
  x: TensorInfo,
  filter: TensorInfo,
  info: ConvInfo,
  epilogue: Epilogue,
): TensorInfo {
  const out = backend.makeOutput([...info.outShape], "float32");
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const pixels = info.outHeight * info.outWidth;
  const pointwise = isPointwise(info);
  const chunk = imagesPerChunk(info);
  const heap = pointwise ? undefined : heapColumns(backend, info, chunk * pixels * k);
  // Views only after the last allocation: makeOutput may grow (and detach) the heap.
  const [xv, wv, ov] = [x, filter, out].map((t) => heapView(backend, t)) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  if (pointwise) {
    context.blas.sgemm({ m: info.batchSize * pixels, n, k, a: xv, b: wv, c: ov });
  } else {
    const cols = heap ? heapView(backend, heap.tensor) : scratch.take(chunk * pixels * k);
    try {
      for (let first = 0; first < info.batchSize; first += chunk) {
        const count = Math.min(chunk, info.batchSize - first);
        fillColumns(backend, heap, x, xv, info, first, count, cols);
        context.blas.sgemm({
          m: count * pixels,
          n,
          k,
          a: cols.subarray(0, count * pixels * k),
          b: wv,
          c: ov.subarray(first * pixels * n, (first + count) * pixels * n),
        });
      }
    } finally {
      if (heap) backend.disposeData(heap.tensor.dataId);
    }
  }
  runEpilogue(backend, out, ov, info.outShape, epilogue);
  return out;
}

function gradInput(
  context: KernelContext,
  scratch: Scratch,
  backend: WasmHeapBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  info: ConvInfo,
): TensorInfo {
  checkShape("dy", dy.shape, info.outShape);
  const dx = backend.makeOutput([...info.inShape], "float32");
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const outC = info.outChannels;
  const pixels = info.outHeight * info.outWidth;
  if (isPointwise(info)) {
    const [dyv, wv, dxv] = [dy, filter, dx].map((t) => heapView(backend, t));
    context.blas.sgemm({ m: info.batchSize * pixels, n: k, k: outC, a: dyv!, b: wv!, c: dxv!, transB: true });
    return dx;
  }
  const chunk = imagesPerChunk(info);
  const heap = heapColumns(backend, info, chunk * pixels * k);
  // Views only after the last allocation: makeOutput may grow (and detach) the heap.
  const [dyv, wv, dxv] = [dy, filter, dx].map((t) => heapView(backend, t)) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const cols = heap ? heapView(backend, heap.tensor) : scratch.take(chunk * pixels * k);
  dxv.fill(0);
  try {
    for (let first = 0; first < info.batchSize; first += chunk) {
      const count = Math.min(chunk, info.batchSize - first);
      context.blas.sgemm({
        m: count * pixels,
        n: k,
        k: outC,
        a: dyv.subarray(first * pixels * outC, (first + count) * pixels * outC),
        b: wv,
        c: cols.subarray(0, count * pixels * k),
        transB: true,
      });
      if (heap) {
        heap.simd.col2im(
          heapOffset(backend, heap.tensor),
          heapOffset(backend, dx),
          first,
          count,
          ...geometryOf(info),
        );
      } else {
        col2im(cols, info, first, count, dxv);
      }
    }
  } finally {
    if (heap) backend.disposeData(heap.tensor.dataId);
  }
  return dx;
}

function gradFilter(
  context: KernelContext,
  scratch: Scratch,
  backend: WasmHeapBackend,
  x: TensorInfo,
  dy: TensorInfo,
  info: ConvInfo,
): TensorInfo {
  checkShape("dy", dy.shape, info.outShape);
  const dw = backend.makeOutput([...info.filterShape], "float32");
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const outC = info.outChannels;
  const pixels = info.outHeight * info.outWidth;
  const empty = info.batchSize === 0 || pixels === 0;
  const pointwise = isPointwise(info);
  const chunk = imagesPerChunk(info);
  const heap = empty || pointwise ? undefined : heapColumns(backend, info, chunk * pixels * k);
  // Views only after the last allocation: makeOutput may grow (and detach) the heap.
  const [xv, dyv, dwv] = [x, dy, dw].map((t) => heapView(backend, t)) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  if (empty) {
    dwv.fill(0);
    return dw;
  }
  if (pointwise) {
    const rows = info.batchSize * pixels;
    context.blas.sgemm({ m: k, n: outC, k: rows, a: xv, b: dyv, c: dwv, transA: true });
    return dw;
  }
  const cols = heap ? heapView(backend, heap.tensor) : scratch.take(chunk * pixels * k);
  try {
    for (let first = 0; first < info.batchSize; first += chunk) {
      const count = Math.min(chunk, info.batchSize - first);
      fillColumns(backend, heap, x, xv, info, first, count, cols);
      context.blas.sgemm({
        m: k,
        n: outC,
        k: count * pixels,
        a: cols.subarray(0, count * pixels * k),
        b: dyv.subarray(first * pixels * outC, (first + count) * pixels * outC),
        c: dwv,
        transA: true,
        beta: first === 0 ? 0 : 1,
      });
    }
  } finally {
    if (heap) backend.disposeData(heap.tensor.dataId);
  }
  return dw;
}

/**
 * A scratch tensor on the heap for one chunk's columns, with the SIMD kernels that fill and read it
 * (simd/heap_kernels.wat im2col and col2im), when they can run: no dilation, and a heap they bind.
 * Allocate it before taking views. The caller disposes of it.
 */
function heapColumns(
  backend: WasmHeapBackend,
  info: ConvInfo,
  floats: number,
): { simd: HeapKernels; tensor: TensorInfo } | undefined {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const simd = heapKernelsOf(backend);
  return simd ? { simd, tensor: backend.makeOutput([floats], "float32") } : undefined;
}

/** The columns of images `first .. first+count-1` into `cols`: SIMD on the heap scratch, else JavaScript. */
function fillColumns(
  backend: WasmHeapBackend,
  heap: { simd: HeapKernels; tensor: TensorInfo } | undefined,
  x: TensorInfo,
  xv: Float32Array,
  info: ConvInfo,
  first: number,
  count: number,
  cols: Float32Array,
): void {
  if (heap) {
    heap.simd.im2col(
      heapOffset(backend, x),
      heapOffset(backend, heap.tensor),
      first,
      count,
      ...geometryOf(info),
    );
  } else {
    im2col(xv, info, first, count, cols);
  }
}

function checkShape(name: string, actual: readonly number[], expected: readonly number[]): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new RangeError(
      `Cannot compute the convolution gradient as ${name} must have shape [${expected}]: ` +
        `current shape is [${actual}]`,
    );
  }
}

/**
 * Writes the patches of images `first .. first+count-1` of `x` as rows of `cols`: one row per output
 * pixel, `filterHeight * filterWidth * inChannels` values per row (HWC order, zeros outside the image).
 * Without horizontal dilation the in-image part of a filter row is one contiguous run of `x`.
 */
function im2col(x: Float32Array, info: ConvInfo, first: number, count: number, cols: Float32Array): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const rowLength = filterHeight * filterWidth * inChannels;
  const filterRow = filterWidth * inChannels;
  let row = 0;
  for (let image = first; image < first + count; image++) {
    const imageBase = image * inHeight * inWidth * inChannels;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, row += rowLength) {
        const [fx0, fx1] = validTaps(ox * strideWidth - left, dilationWidth, filterWidth, inWidth);
        let col = row;
        for (let fy = 0; fy < filterHeight; fy++, col += filterRow) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight || fx0 >= fx1) {
            cols.fill(0, col, col + filterRow);
            continue;
          }
          const lineBase = imageBase + iy * inWidth * inChannels;
          const ix0 = ox * strideWidth - left;
          const from = col + fx0 * inChannels, to = col + fx1 * inChannels;
          for (let c = col; c < from; c++) cols[c] = 0;
          for (let c = to; c < col + filterRow; c++) cols[c] = 0;
          if (dilationWidth === 1) {
            const source = lineBase + (ix0 + fx0) * inChannels - from;
            // A long run is one memcpy; a short one (a few channels) is cheaper as a loop.
            if (to - from >= COPY_RUN) cols.set(x.subarray(source + from, source + to), from);
            else for (let c = from; c < to; c++) cols[c] = x[source + c]!;
            continue;
          }
          for (let fx = fx0; fx < fx1; fx++) {
            const source = lineBase + (ix0 + fx * dilationWidth) * inChannels;
            const target = col + fx * inChannels;
            for (let c = 0; c < inChannels; c++) cols[target + c] = x[source + c]!;
          }
        }
      }
    }
  }
}

/** The adjoint of {@link im2col}: adds each row of `cols` back onto the pixels it was read from. */
function col2im(cols: Float32Array, info: ConvInfo, first: number, count: number, dx: Float32Array): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const rowLength = filterHeight * filterWidth * inChannels;
  const filterRow = filterWidth * inChannels;
  let row = 0;
  for (let image = first; image < first + count; image++) {
    const imageBase = image * inHeight * inWidth * inChannels;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, row += rowLength) {
        const [fx0, fx1] = validTaps(ox * strideWidth - left, dilationWidth, filterWidth, inWidth);
        if (fx0 >= fx1) continue;
        const ix0 = ox * strideWidth - left;
        let col = row;
        for (let fy = 0; fy < filterHeight; fy++, col += filterRow) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          const lineBase = imageBase + iy * inWidth * inChannels;
          if (dilationWidth === 1) {
            const from = col + fx0 * inChannels, to = col + fx1 * inChannels;
            const target = lineBase + (ix0 + fx0) * inChannels - from;
            for (let c = from; c < to; c++) dx[target + c]! += cols[c]!;
            continue;
          }
          for (let fx = fx0; fx < fx1; fx++) {
            const target = lineBase + (ix0 + fx * dilationWidth) * inChannels;
            const source = col + fx * inChannels;
            for (let c = 0; c < inChannels; c++) dx[target + c]! += cols[source + c]!;
          }
        }
      }
    }
  }
}

/**
 * The filter taps `[fx0, fx1)` of one output column whose input column `start + fx * dilation` lies
 * inside `0 .. size-1`.
 */
function validTaps(start: number, dilation: number, taps: number, size: number): [number, number] {
  const fx0 = start >= 0 ? 0 : Math.ceil(-start / dilation);
  const fx1 = Math.min(taps, Math.floor((size - 1 - start) / dilation) + 1);
  return [Math.min(fx0, taps), Math.max(fx1, 0)];
}
