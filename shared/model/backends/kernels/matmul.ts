/**
 * `BatchMatMul` and `_FusedMatMul` for the wasm backend through `cblas_sgemm`.
 *
 * @module
 */
import type {
  _FusedMatMulAttrs,
  BatchMatMulAttrs,
  KernelConfig,
  KernelFunc,
  NamedTensorInfoMap,
  TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import { _FusedMatMul, BatchMatMul, broadcast_util, util } from "npm:@tensorflow/tfjs-core@4.22.0";
import type { Blas } from "../blas.ts";
import { checkActivation, type Epilogue, runEpilogue } from "./epilogue.ts";
import { heapView, type WasmHeapBackend, wasmHeapBackend } from "../wasm_internals.ts";
import type { KernelContext } from "./kernel_context.ts";

/** Kernel configs of `BatchMatMul` and `_FusedMatMul` for `backendName`. */
export function matMulKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const batchMatMul: KernelFunc = (args) => {
    const { a, b } = args.inputs as NamedTensorInfoMap & { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as unknown as BatchMatMulAttrs;
    if (a.dtype !== "float32" || b.dtype !== "float32") {
      return delegate(context, BatchMatMul, args);
    }
    return matMul(context.blas, wasmHeapBackend(args.backend), a, b, attrs, { activation: "linear" });
  };
  const fusedMatMul: KernelFunc = (args) => {
    const inputs = args.inputs as NamedTensorInfoMap & {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as _FusedMatMulAttrs;
    if (inputs.a.dtype !== "float32" || inputs.b.dtype !== "float32") {
      return delegate(context, _FusedMatMul, args);
    }
    const epilogue: Epilogue = { activation: checkActivation(_FusedMatMul, attrs.activation) };
    if (inputs.bias !== undefined) epilogue.bias = inputs.bias;
    if (inputs.preluActivationWeights !== undefined) epilogue.prelu = inputs.preluActivationWeights;
    if (attrs.leakyreluAlpha !== undefined) epilogue.leakyreluAlpha = attrs.leakyreluAlpha;
    return matMul(context.blas, wasmHeapBackend(args.backend), inputs.a, inputs.b, attrs, epilogue);
  };
  return [
    { kernelName: BatchMatMul, backendName, kernelFunc: batchMatMul },
    { kernelName: _FusedMatMul, backendName, kernelFunc: fusedMatMul },
  ];
}

function delegate(context: KernelContext, kernelName: string, args: Parameters<KernelFunc>[0]) {
  const stock = context.fallback(kernelName);
  if (stock === undefined) {
    throw new TypeError(`Cannot run ${kernelName} as it supports float32 inputs only and no fallback exists`);
  }
  return stock(args);
}

/**
 * `op(a) · op(b)` over broadcast batch dimensions (numpy rules on all dimensions but the last two),
 * then `+ bias` and the activation, written to a new output on the wasm heap.
 */
function matMul(
  blas: Blas,
  backend: WasmHeapBackend,
  a: TensorInfo,
  b: TensorInfo,
  attrs: BatchMatMulAttrs,
  epilogue: Epilogue,
): TensorInfo {
  const { transposeA, transposeB } = attrs;
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  if (rankA < 2 || rankB < 2) {
    throw new RangeError(
      `Cannot multiply matrices of shapes [${a.shape}] and [${b.shape}] as both must have rank >= 2`,
    );
  }
  const m = transposeA ? a.shape[rankA - 1]! : a.shape[rankA - 2]!;
  const k = transposeA ? a.shape[rankA - 2]! : a.shape[rankA - 1]!;
  const kB = transposeB ? b.shape[rankB - 1]! : b.shape[rankB - 2]!;
  const n = transposeB ? b.shape[rankB - 2]! : b.shape[rankB - 1]!;
  if (k !== kB) {
    throw new RangeError(
      `Cannot multiply matrices of shapes [${a.shape}] and [${b.shape}] (transposeA=${transposeA}, ` +
        `transposeB=${transposeB}) as the inner dimensions must match: ${k} != ${kB}`,
    );
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchShape = broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  const outShape = [...batchShape, m, n];
  const out = backend.makeOutput(outShape, "float32");
  // Views only after the last allocation: makeOutput may grow (and detach) the heap.
  const av = heapView(backend, a);
  const bv = heapView(backend, b);
  const ov = heapView(backend, out);
  const batches = util.sizeFromShape(batchShape);
  const indexA = batchIndices(batchShape, batchA);
  const indexB = batchIndices(batchShape, batchB);
  const sizeA = m * k;
  const sizeB = k * n;
  const sizeC = m * n;
  if (!transposeA && util.sizeFromShape(batchB) === 1 && util.sizeFromShape(batchA) === batches) {
    // b is shared by all batches and a's batches are contiguous rows: one call with m * batches rows.
    blas.sgemm({ m: m * batches, n, k, a: av, b: bv, c: ov, transB: transposeB });
  } else {
    for (let i = 0; i < batches; i++) {
      blas.sgemm({
        m,
        n,
        k,
        a: av.subarray(indexA[i]! * sizeA, (indexA[i]! + 1) * sizeA),
        b: bv.subarray(indexB[i]! * sizeB, (indexB[i]! + 1) * sizeB),
        c: ov.subarray(i * sizeC, (i + 1) * sizeC),
        transA: transposeA,
        transB: transposeB,
      });
    }
  }
  runEpilogue(backend, out, ov, outShape, epilogue);
  return out;
}

/** For each flat index of `outShape`, the flat index of `shape` broadcast to it (numpy rules). */
function batchIndices(outShape: readonly number[], shape: readonly number[]): Int32Array {
  const total = util.sizeFromShape([...outShape]);
  const result = new Int32Array(total);
  if (util.sizeFromShape([...shape]) <= 1) return result;
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const axis = rank - shape.length + d;
    strides[axis] = shape[d] === 1 ? 0 : stride;
    stride *= shape[d]!;
  }
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < total; i++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) offset += index[d]! * strides[d]!;
    result[i] = offset;
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < outShape[d]!) break;
      index[d] = 0;
    }
  }
  return result;
}
