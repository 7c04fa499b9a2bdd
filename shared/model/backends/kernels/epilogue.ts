/**
 * The element-wise epilogues (bias, activation) shared by the BLAS kernels: SIMD on the wasm heap
 * where it applies, JavaScript loops elsewhere. Access to the wasm heap itself is in ../wasm_internals.ts.
 *
 * @module
 */
import { broadcast_util, type TensorInfo, util } from "npm:@tensorflow/tfjs-core@4.22.0";
import { heapOffset, heapView, type WasmHeapBackend } from "../wasm_internals.ts";
import { heapKernelsOf } from "./heap_simd.ts";

/** Activations that the fused kernels apply after the bias; the set of the stock wasm kernels. */
export type FusedActivation = "linear" | "relu" | "relu6" | "elu" | "sigmoid" | "leakyrelu" | "prelu";

const ACTIVATIONS: ReadonlySet<string> = new Set([
  "linear",
  "relu",
  "relu6",
  "elu",
  "sigmoid",
  "leakyrelu",
  "prelu",
]);

/** What a fused kernel adds to its product: bias, then activation (with its weights or slope). */
export interface Epilogue {
  bias?: TensorInfo;
  activation: FusedActivation;
  leakyreluAlpha?: number;
  prelu?: TensorInfo;
}

/**
 * Applies `epilogue` to `out` (whose view is `ov`, shape `outShape`) in place: SIMD on the heap
 * (simd/heap_kernels.wat bias_relu) for a bias along the last axis and a linear or relu activation,
 * else the JavaScript loops below.
 */
export function runEpilogue(
  backend: WasmHeapBackend,
  out: TensorInfo,
  ov: Float32Array,
  outShape: readonly number[],
  epilogue: Epilogue,
): void {
  const { bias, activation } = epilogue;
  const cols = outShape[outShape.length - 1] ?? 1;
  const rowBias = bias === undefined ||
    (util.sizeFromShape(bias.shape) === cols && bias.shape[bias.shape.length - 1] === cols);
  const simd = (activation === "linear" || activation === "relu") && rowBias
    ? heapKernelsOf(backend)
    : undefined;
  if (simd) {
    if (bias === undefined && activation === "linear") return;
    simd.bias_relu(
      heapOffset(backend, out),
      bias === undefined ? -1 : heapOffset(backend, bias),
      cols === 0 ? 0 : ov.length / cols,
      cols,
      activation === "relu" ? 1 : 0,
    );
    return;
  }
  if (bias !== undefined) addBroadcast(ov, outShape, heapView(backend, bias), bias.shape);
  const prelu = epilogue.prelu === undefined
    ? undefined
    : { values: heapView(backend, epilogue.prelu), shape: epilogue.prelu.shape };
  applyActivation(ov, outShape, activation, {
    ...(epilogue.leakyreluAlpha === undefined ? {} : { leakyreluAlpha: epilogue.leakyreluAlpha }),
    ...(prelu === undefined ? {} : { prelu }),
  });
}

/** Returns `name` as a {@link FusedActivation}, or throws with the supported list. */
export function checkActivation(kernel: string, name: string | undefined): FusedActivation {
  const activation = name ?? "linear";
  if (!ACTIVATIONS.has(activation)) {
    throw new TypeError(
      `Cannot run ${kernel} as activation must be one of ${[...ACTIVATIONS].join(", ")}: ` +
        `current value is ${activation}`,
    );
  }
  return activation as FusedActivation;
}

/**
 * `out += operand`, with `operand` broadcast (numpy rules) to `outShape`. A 1-D operand of the last
 * dimension's length, and a single value, take fast paths.
 */
export function addBroadcast(
  out: Float32Array,
  outShape: readonly number[],
  operand: Float32Array,
  operandShape: readonly number[],
): void {
  forEachBroadcast(out, outShape, operand, operandShape, (o, v) => o + v);
}

/** Applies `activation` to `out` in place; `prelu` reads its weights broadcast to `outShape`. */
export function applyActivation(
  out: Float32Array,
  outShape: readonly number[],
  activation: FusedActivation,
  options: { leakyreluAlpha?: number; prelu?: { values: Float32Array; shape: readonly number[] } },
): void {
  const n = out.length;
  switch (activation) {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < n; i++) if (out[i]! < 0) out[i] = 0;
      return;
    case "relu6":
      for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(out[i]!, 0), 6);
      return;
    case "elu":
      for (let i = 0; i < n; i++) if (out[i]! < 0) out[i] = Math.expm1(out[i]!);
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
      return;
    case "leakyrelu": {
      const alpha = options.leakyreluAlpha ?? 0.2;
      for (let i = 0; i < n; i++) if (out[i]! < 0) out[i] = out[i]! * alpha;
      return;
    }
    case "prelu": {
      const weights = options.prelu;
      if (weights === undefined) {
        throw new TypeError("Cannot apply the prelu activation as preluActivationWeights is missing");
      }
      forEachBroadcast(out, outShape, weights.values, weights.shape, (o, w) => o < 0 ? o * w : o);
      return;
    }
  }
}

function forEachBroadcast(
  out: Float32Array,
  outShape: readonly number[],
  operand: Float32Array,
  operandShape: readonly number[],
  combine: (out: number, operand: number) => number,
): void {
  broadcast_util.assertAndGetBroadcastShape([...outShape], [...operandShape]);
  const n = out.length;
  const last = outShape[outShape.length - 1] ?? 1;
  if (operand.length === 1) {
    const v = operand[0]!;
    for (let i = 0; i < n; i++) out[i] = combine(out[i]!, v);
    return;
  }
  if (operand.length === last && operandShape[operandShape.length - 1] === last) {
    for (let row = 0; row < n; row += last) {
      for (let j = 0; j < last; j++) out[row + j] = combine(out[row + j]!, operand[j]!);
    }
    return;
  }
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let d = operandShape.length - 1; d >= 0; d--) {
    const axis = rank - operandShape.length + d;
    strides[axis] = operandShape[d] === 1 ? 0 : stride;
    stride *= operandShape[d]!;
  }
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) offset += index[d]! * strides[d]!;
    out[i] = combine(out[i]!, operand[offset]!);
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < outShape[d]!) break;
      index[d] = 0;
    }
  }
}
