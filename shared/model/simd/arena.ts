/**
 * Flat arrays in one WebAssembly memory, with the SIMD kernels of `kernels.wat` bound to it. A
 * kernel reads and writes only its arena's memory, so the arrays it works on are allocated here; the
 * memory never grows, so the views it hands out stay valid for the arena's life.
 *
 * @module
 */
import { KERNELS_WASM_BASE64 } from "./kernels_wasm.ts";

const KERNELS = new WebAssembly.Module(Uint8Array.fromBase64(KERNELS_WASM_BASE64));

const PAGE_BYTES = 65_536;
/** Pages a WebAssembly memory (32-bit addresses) may have: 4 GiB. */
const MAX_PAGES = 65_536;
/** Every array starts on a 16-byte boundary (one SIMD vector). */
const ALIGN_BYTES = 16;

interface KernelExports {
  adam(
    w: number,
    g: number,
    m: number,
    v: number,
    n: number,
    alpha: number,
    b1: number,
    b2: number,
    eps: number,
  ): void;
  adam_amsgrad(
    w: number,
    g: number,
    m: number,
    v: number,
    vHat: number,
    n: number,
    alpha: number,
    b1: number,
    b2: number,
    eps: number,
  ): void;
  probe(x: number, n: number): number;
  dropout_mask(
    out: number,
    seeds: number,
    rows: number,
    cols: number,
    threshold: number,
    scale: number,
  ): void;
}

/** Keras 3's Adam coefficients for one step: `b1 = 1 - beta_1`, `b2 = 1 - beta_2`. */
export interface AdamStep {
  /** The bias-corrected learning rate `lr·√(1 - β₂ᵗ) / (1 - β₁ᵗ)`. */
  alpha: number;
  b1: number;
  b2: number;
  epsilon: number;
}

/** A fixed-capacity arena of f32 arrays and the kernels that run on them. */
export class KernelArena {
  readonly #memory: WebAssembly.Memory;
  readonly #kernels: KernelExports;
  /** Bytes the arena was made for (its memory rounds up to whole pages). */
  readonly #capacity: number;
  #used = 0;

  /** An arena for `arrays` arrays of `length` floats each. */
  constructor(length: number, arrays: number) {
    if (!(Number.isInteger(length) && length >= 0 && Number.isInteger(arrays) && arrays >= 0)) {
      throw new RangeError(
        `Cannot create a kernel arena as length and arrays must be integers >= 0: received ${length}, ${arrays}`,
      );
    }
    const bytes = arrays * alignUp(length * 4);
    const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
    if (pages > MAX_PAGES) {
      const most = Math.floor((MAX_PAGES * PAGE_BYTES) / (arrays * 4)) - ALIGN_BYTES;
      throw new RangeError(
        `Cannot hold ${arrays} arrays of ${length} floats (${(bytes / 2 ** 30).toFixed(2)} GiB) in one ` +
          `WebAssembly memory, which holds 4 GiB at most: ${arrays} arrays fit up to about ${most} floats each`,
      );
    }
    this.#capacity = bytes;
    this.#memory = new WebAssembly.Memory({ initial: pages });
    const instance = new WebAssembly.Instance(KERNELS, { env: { memory: this.#memory } });
    this.#kernels = instance.exports as unknown as KernelExports;
  }

  /** A zeroed array of `length` floats in this arena. */
  alloc(length: number): Float32Array {
    return new Float32Array(this.#memory.buffer, this.#reserve(length), length);
  }

  /** A zeroed array of `length` 32-bit integers in this arena. */
  allocInt32(length: number): Int32Array {
    return new Int32Array(this.#memory.buffer, this.#reserve(length), length);
  }

  /** The byte offset of room for `length` 4-byte values. */
  #reserve(length: number): number {
    const bytes = alignUp(length * 4);
    if (this.#used + bytes > this.#capacity) {
      throw new RangeError(
        `Cannot allocate ${length} floats in a kernel arena of ${this.#capacity} bytes ` +
          `with ${this.#used} in use: create the arena with room for every array it will hold`,
      );
    }
    const offset = this.#used;
    this.#used += bytes;
    return offset;
  }

  /** Whether `a` lives in this arena (kernels accept only such arrays). */
  owns(a: Float32Array): boolean {
    return a.buffer === this.#memory.buffer;
  }

  /** One Adam update of `w` in place, with moments `m` and `v` (all in this arena, one length). */
  adam(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, step: AdamStep): void {
    this.#check([w, g, m, v]);
    this.#kernels.adam(
      w.byteOffset,
      g.byteOffset,
      m.byteOffset,
      v.byteOffset,
      w.length,
      step.alpha,
      step.b1,
      step.b2,
      step.epsilon,
    );
  }

  /** One AMSGrad Adam update: as {@link adam}, dividing by the running maximum `vHat` of `v`. */
  adamAmsgrad(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    vHat: Float32Array,
    step: AdamStep,
  ): void {
    this.#check([w, g, m, v, vHat]);
    this.#kernels.adam_amsgrad(
      w.byteOffset,
      g.byteOffset,
      m.byteOffset,
      v.byteOffset,
      vHat.byteOffset,
      w.length,
      step.alpha,
      step.b1,
      step.b2,
      step.epsilon,
    );
  }

  /** Zero when every value of `x` is finite, NaN otherwise. */
  probe(x: Float32Array): number {
    this.#check([x]);
    return this.#kernels.probe(x.byteOffset, x.length);
  }

  /**
   * Dropout masks of `seeds.length` rows of `out.length / seeds.length` columns (kernels.wat
   * `dropout_mask`): `scale` where the column's hash from the row's seed is below `threshold`
   * (unsigned), 0 elsewhere.
   */
  dropoutMask(out: Float32Array, seeds: Int32Array, threshold: number, scale: number): void {
    const rows = seeds.length, cols = rows === 0 ? 0 : out.length / rows;
    if (!this.owns(out) || seeds.buffer !== this.#memory.buffer || !Number.isInteger(cols)) {
      throw new RangeError(
        `Cannot compute dropout masks of ${out.length} values for ${rows} rows: allocate both arrays ` +
          "in this arena, the mask a whole number of rows",
      );
    }
    this.#kernels.dropout_mask(out.byteOffset, seeds.byteOffset, rows, cols, threshold | 0, scale);
  }

  #check(arrays: Float32Array[]): void {
    for (const a of arrays) {
      if (!this.owns(a) || a.length !== arrays[0]!.length || a.byteOffset % 4 !== 0) {
        throw new RangeError(
          `Cannot run a kernel on an array outside its arena or of another length: ` +
            `allocate every operand with the same arena's alloc(${arrays[0]!.length})`,
        );
      }
    }
  }
}

function alignUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN_BYTES) * ALIGN_BYTES;
}
