/**
 * Deterministic random numbers. Training must be reproducible from one seed, and independent of how a
 * batch is split over workers, so every random draw is a pure function of its coordinates
 * (seed, step, layer, global row, column): a counter-based hash, not a stateful stream.
 */

/** A 32-bit avalanche mix (lowbias32 by Chris Wellons). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Hashes up to four 32-bit integers into one uniformly distributed 32-bit integer. */
export function hash32(a: number, b = 0, c = 0, d = 0): number {
  let h = mix32((a ^ 0x9e3779b9) >>> 0);
  h = mix32((h ^ b) + 0x85ebca6b >>> 0);
  h = mix32((h ^ c) + 0xc2b2ae35 >>> 0);
  h = mix32((h ^ d) + 0x27d4eb2f >>> 0);
  return h;
}

/** A uniform float in [0, 1) from a 32-bit hash. */
export function unitFloat(h: number): number {
  return h / 4294967296;
}

/** A small seeded generator (sfc32) for initializers and permutations. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    this.#a = hash32(seed, stream, 1);
    this.#b = hash32(seed, stream, 2);
    this.#c = hash32(seed, stream, 3);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
