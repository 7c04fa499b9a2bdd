/**
 * The ring reduce-scatter's arithmetic and schedule, apart from any transport (Gloo keeps
 * `allreduce_ring` apart from its pairs the same way). N ranks hold a gradient of P values each and a
 * weight wₖ (the rank's share of the batch, nₖ / Σ n). The vector is cut into N shards; shard c starts
 * at rank c + 1 as w₍c+1₎·g₍c+1₎ and travels once around the ring, each rank adding its own wₖ·gₖ to
 * it in float32, until rank c adds the last term and holds shard c reduced:
 *
 *   shard c = (…((w₍c+1₎·g₍c+1₎ + w₍c+2₎·g₍c+2₎) + …) + w_c·g_c)   (rank indices mod N)
 *
 * The order of the terms depends only on N and c, so a run is reproducible for a given N. Each round
 * every rank sends one shard to its next neighbour and receives one from its previous: N − 1 rounds,
 * each rank sending (N − 1)/N of the vector, whatever N is. Shards travel in chunks of at most
 * {@link RING_CHUNK_FLOATS} values, so a rank forwards the start of a shard before its end arrived and
 * holds one chunk in flight beside its own shard.
 *
 * @module
 */
import { addScaled, addToScaled, scaleFromZero } from "../model/vector.ts";

/**
 * Values per chunk on a ring connection (64 KiB of float32): small enough that the pipeline fills in
 * little time even on a long ring, large enough that a frame's overhead is small.
 */
export const RING_CHUNK_FLOATS = 16 * 1024;

/** Values `[start, end)` of shard `shard` of a vector of `length` values cut into `shards` shards. */
export function shardBounds(length: number, shards: number, shard: number): [number, number] {
  return [Math.floor((shard * length) / shards), Math.floor(((shard + 1) * length) / shards)];
}

/** Chunks of `chunkFloats` values in `values` values (at least one, so an empty shard still travels). */
export function chunkCount(values: number, chunkFloats = RING_CHUNK_FLOATS): number {
  return Math.max(1, Math.ceil(values / chunkFloats));
}

/** The shard rank `rank` of `size` sends in round `round` (0 … size − 2). */
export function sentShard(rank: number, size: number, round: number): number {
  return mod(rank - 1 - round, size);
}

/** The shard rank `rank` of `size` receives in round `round`; in the last round it is its own. */
export function receivedShard(rank: number, size: number, round: number): number {
  return mod(rank - 2 - round, size);
}

/**
 * `weight · own`, rounded to float32: the first term of a shard, written to `out` (a buffer reused
 * chunk after chunk; its values before are overwritten) or to a new array.
 */
export function firstTerm(
  own: Float32Array,
  weight: number,
  out: Float32Array = new Float32Array(own.length),
): Float32Array {
  if (out.length !== own.length) {
    throw new RangeError(
      `Cannot write a first term of ${own.length} values to an array of ${out.length} values: pass out.subarray(0, ${own.length})`,
    );
  }
  // 0 + w·x, as a shard in transit adds a term: -0 becomes +0 the same way.
  out.fill(0);
  addScaled(out, own, weight);
  return out;
}

/** `partial += weight · own`, rounded to float32: one rank's term added to a shard in transit. */
export function addTerm(partial: Float32Array, own: Float32Array, weight: number): void {
  if (partial.length !== own.length) {
    throw new RangeError(
      `Cannot add a term of ${own.length} values to a ring chunk of ${partial.length} values: the ranks cut the vector differently`,
    );
  }
  addScaled(partial, own, weight);
}

/**
 * `0 + w·x` over `values` in place, rounded to float32: a shard's first term, as {@link firstTerm}
 * computes it (-0 becomes +0 the same way), where the own values are read only here.
 */
export function firstTermInPlace(values: Float32Array, weight: number): Float32Array {
  scaleFromZero(values, weight);
  return values;
}

/**
 * `own ← partial + w·own` in place, rounded to float32: {@link addTerm}'s sum, stored in the own
 * values (read only here) instead of the chunk in transit.
 */
export function addTermInPlace(own: Float32Array, partial: Float32Array, weight: number): void {
  if (partial.length !== own.length) {
    throw new RangeError(
      `Cannot add a term of ${own.length} values to a ring chunk of ${partial.length} values: the ranks cut the vector differently`,
    );
  }
  addToScaled(own, partial, weight);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
