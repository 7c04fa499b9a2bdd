/**
 * `Dropout`: in training, zeroes each value with probability `rate` and scales the rest by 1/(1-rate).
 * The mask of a value is a pure function of (seed, step, layer, global row, column), so a batch gives
 * the same masks however it is split over workers.
 */
import { tf } from "../tf.ts";
import { hash32 } from "../random.ts";
import { KernelArena } from "../simd/arena.ts";
import { type CallContext, Layer, type LayerOptions, type Shape, sizeOf } from "./layer.ts";

/** A stable 32-bit id for a layer name, used as a random stream id. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Dropout extends Layer {
  readonly className = "Dropout";
  readonly rate: number;
  #arena: { arena: KernelArena; mask: Float32Array; seeds: Int32Array } | undefined;

  constructor(rate: number, opts: LayerOptions & { seed?: number | null } = {}) {
    super(opts);
    if (!(rate >= 0 && rate < 1)) {
      throw new RangeError(`Cannot create a Dropout layer as rate must be in [0, 1): received rate=${rate}`);
    }
    this.rate = rate;
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    return inputShapes[0]!;
  }

  call(inputs: tf.Tensor[], _weights: tf.Tensor[], ctx: CallContext): tf.Tensor {
    const x = inputs[0]!;
    if (!ctx.training || this.rate === 0) return x;
    const rows = x.shape[0]!;
    const cols = sizeOf(x.shape.slice(1));
    const keep = 1 - this.rate;
    const scale = 1 / keep;
    const stream = nameHash(this.name ?? "dropout");
    const threshold = Math.ceil(keep * 4294967296);
    if (threshold >= 4294967296) return tf.mul(x, scale);
    const k = this.#kernel(rows, cols);
    for (let r = 0; r < rows; r++) {
      k.seeds[r] = rowState(hash32(ctx.seed, ctx.step, stream, ctx.rowOffset + r));
    }
    k.arena.dropoutMask(k.mask, k.seeds, threshold, scale);
    // A copy: a backend may keep the array as the tensor's storage, and this layer writes it again.
    return tf.mul(x, tf.tensor(k.mask.slice(), x.shape));
  }

  /** The arena the masks are computed in, grown for a larger batch. */
  #kernel(rows: number, cols: number): { arena: KernelArena; mask: Float32Array; seeds: Int32Array } {
    if (!this.#arena || this.#arena.seeds.length !== rows || this.#arena.mask.length !== rows * cols) {
      const arena = new KernelArena(rows * cols + rows, 2);
      this.#arena = { arena, mask: arena.alloc(rows * cols), seeds: arena.allocInt32(rows) };
    }
    return this.#arena;
  }

  protected layerConfig(): Record<string, unknown> {
    return { rate: this.rate, seed: null, noise_shape: null };
  }
}

/** hash32's state after its first mix, which depends on the row only: what every column starts from. */
export function rowState(rowSeed: number): number {
  let h = (rowSeed ^ 0x9e3779b9) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h;
}

/**
 * Writes `scale` or 0 for columns `0..cols-1` of one row: the value of column `c` is
 * `unitFloat(hash32(rowSeed, c)) < keep ? scale : 0`, with hash32's first mix (which depends on the row
 * only) hoisted out of the loop and the rest inlined (3x faster than calling hash32 per value).
 */
export function fillRowMask(
  mask: Float32Array,
  offset: number,
  cols: number,
  rowSeed: number,
  keep: number,
  scale: number,
): void {
  const threshold = keep * 4294967296;
  const h = rowState(rowSeed);
  for (let c = 0; c < cols; c++) {
    let x = ((h ^ c) + 0x85ebca6b) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    x = (x + 0xc2b2ae35) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    x = (x + 0x27d4eb2f) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    mask[offset + c] = (x >>> 0) < threshold ? scale : 0;
  }
}
