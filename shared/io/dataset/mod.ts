/**
 * Datasets read by row: in memory, from sharded `.npz` or CSV files, or spilled from a generator;
 * file-backed rows read a batch ahead in a reader thread while the current batch computes.
 *
 * @module
 */
export {
  type CsvDatasetOptions,
  Dataset,
  type DatasetSpec,
  DatasetSpecSchema,
  fromArrays,
  fromCsv,
  fromGenerator,
  fromNpz,
  type GeneratorDatasetOptions,
  type NpzDatasetOptions,
  openSpec,
  type ShardOptions,
} from "./dataset.ts";
export type { ElementSpec, RowArray, Rows, RowSource } from "./rows.ts";
export { MemoryRows } from "./rows.ts";
export { checkPrefetch, DEFAULT_PREFETCH, MAX_PREFETCH, PrefetchingReader } from "./prefetch.ts";
export { bufferedOrder, globalOrder, identityOrder } from "./order.ts";
