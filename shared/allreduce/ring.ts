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
import { addToScaled, scaleFromZero } from "../model/vector.ts";

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
 * `0 + w·x` over `values` in place, rounded to float32: a shard's first term, computed as a shard in
 * transit adds a term (-0 becomes +0 the same way). The own values are read only here.
 */
export function firstTermInPlace(values: Float32Array, weight: number): Float32Array {
  scaleFromZero(values, weight);
  return values;
}

/**
 * `own ← partial + w·own` in place, rounded to float32: a shard's partial sum from the chunk in
 * transit and this rank's term, stored over its own values (read only here).
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
