/**
 * One work buffer that the kernels of a backend share and grow as needed. A fresh buffer per call
 * (up to 16 MiB for an im2col matrix) cost page faults and zeroing on every call, and made the garbage
 * collector run on every step under external-memory pressure. Kernels run one at a time, so one
 * buffer is enough; a kernel must not keep a view across calls.
 */
export class Scratch {
  #buffer = new Float32Array(0);

  /** A view of `length` floats; its contents are whatever the last kernel left there. */
  take(length: number): Float32Array {
    if (this.#buffer.length < length) this.#buffer = new Float32Array(length);
    return this.#buffer.subarray(0, length);
  }
}
