/**
 * Slice with bounds checks. The stock wasm Slice reads past the end of its input when `begin + size`
 * exceeds a dimension and returns garbage; the `cpu` backend throws. This kernel checks first, with
 * tfjs's own message, then runs the stock kernel.
 */
import {
  type KernelConfig,
  type KernelFunc,
  Slice,
  slice_util,
  type SliceAttrs,
  type TensorInfo,
} from "npm:@tensorflow/tfjs-core@4.22.0";
import type { KernelContext } from "./kernel_context.ts";

export function sliceKernels(backendName: string, context: KernelContext): KernelConfig[] {
  const stock = context.fallback(Slice);
  if (stock === undefined) return [];
  const slice: KernelFunc = (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    const { begin, size } = args.attrs as unknown as SliceAttrs;
    const [b, s] = slice_util.parseSliceParams(x, begin, size);
    slice_util.assertParamsValid(x, b, s);
    return stock(args);
  };
  return [{ kernelName: Slice, backendName, kernelFunc: slice }];
}
