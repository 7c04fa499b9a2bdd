/**
 * The kernels of `heap_kernels.wat`, bound to the wasm backend's own memory: they work on tensors in
 * place, by byte offset, in SIMD. One instance per memory; none when the memory cannot be imported (a
 * shared memory of the threaded build), and the callers keep their JavaScript loops for that case.
 *
 * @module
 */
import { HEAP_KERNELS_WASM_BASE64 } from "./heap_kernels_wasm.ts";

const MODULE = new WebAssembly.Module(Uint8Array.fromBase64(HEAP_KERNELS_WASM_BASE64));

/**
 * An image kernel's geometry, in elements, after its pointers (and batch or image range): input height,
 * width and channels, output height and width, window (filter) height and width, strides, and the
 * padding before the first row and column.
 */
export type Geometry = [
  inHeight: number,
  inWidth: number,
  channels: number,
  outHeight: number,
  outWidth: number,
  filterHeight: number,
  filterWidth: number,
  strideHeight: number,
  strideWidth: number,
  padTop: number,
  padLeft: number,
];

/** The exports of heap_kernels.wat; pointers are byte offsets, sizes are in elements. */
export interface HeapKernels {
  max_pool_grad(x: number, dy: number, dx: number, batch: number, ...geometry: Geometry): void;
  column_sums(x: number, rows: number, width: number, acc: number, out: number): void;
  im2col(x: number, cols: number, first: number, count: number, ...geometry: Geometry): void;
  bn_moments(x: number, rows: number, channels: number, acc: number, mean: number, squares: number): void;
  bn_normalize(
    x: number,
    rows: number,
    channels: number,
    mean: number,
    invStd: number,
    gamma: number,
    beta: number,
    xHat: number,
    y: number,
  ): void;
  bn_grad_sums(
    dy: number,
    xHat: number,
    rows: number,
    channels: number,
    acc: number,
    dBeta: number,
    dGamma: number,
  ): void;
  bn_grad(
    dy: number,
    xHat: number,
    rows: number,
    channels: number,
    a: number,
    b: number,
    gamma: number,
    invStd: number,
    dx: number,
  ): void;
  bias_relu(out: number, bias: number, rows: number, cols: number, relu: number): void;
  relu_grad(dy: number, x: number, dx: number, n: number): void;
  col2im(cols: number, dx: number, first: number, count: number, ...geometry: Geometry): void;
  /** 0 (or -0) when the `n` floats at `p` are all finite, NaN otherwise. */
  nonfinite_probe(p: number, n: number): number;
}

/**
 * The {@link Geometry} of a convolution or pooling (tfjs's Conv2DInfo), with the effective (dilated)
 * window; the heap kernels run undilated windows only.
 */
export function geometryOf(info: {
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  effectiveFilterHeight: number;
  effectiveFilterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padInfo: { top: number; left: number };
}): Geometry {
  return [
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.effectiveFilterHeight,
    info.effectiveFilterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
}

const bound = new WeakMap<WebAssembly.Memory, HeapKernels | null>();

/** The kernels bound to `memory`, or undefined when they cannot import it. */
export function heapKernelsFor(memory: WebAssembly.Memory): HeapKernels | undefined {
  let kernels = bound.get(memory);
  if (kernels === undefined) {
    try {
      kernels = new WebAssembly.Instance(MODULE, { env: { memory } }).exports as unknown as HeapKernels;
    } catch {
      kernels = null;
    }
    bound.set(memory, kernels);
  }
  return kernels ?? undefined;
}
