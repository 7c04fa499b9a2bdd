/**
 * The in-process worker pool: the same Engine a worker process runs, called directly. Rows of
 * file-backed datasets are read a batch ahead in a reader thread while the current batch computes.
 */
import {
  type Batch,
  type Engine,
  type EvalResult,
  metricOffsets,
  type SliceResult,
} from "../shared/model/mod.ts";
import { PrefetchingReader } from "../shared/io/dataset/mod.ts";
import { type Dataset, gatherRows, rangeBatch } from "./data.ts";
import type { StepRequest, WorkerPool } from "./pool.ts";

export class LocalPool implements WorkerPool {
  readonly workers = 0;
  readonly #data = new Map<string, Dataset>();
  /** Readers of the file-backed datasets that read ahead, by dataset name. */
  readonly #readers = new Map<string, PrefetchingReader>();
  /** The gradient of the latest step, written again by the next. */
  #grads = new Float32Array(0);

  constructor(readonly engine: Engine, readonly backend: string) {}

  setData(name: string, data: Dataset): Promise<void> {
    this.#readers.get(name)?.close();
    this.#readers.delete(name);
    this.#data.set(name, data);
    const source = data.source;
    if (source?.spec && source.prefetchDepth > 0) {
      this.#readers.set(name, new PrefetchingReader(source.spec, source.prefetchDepth, source));
    }
    return Promise.resolve();
  }

  /** Rows `start..end` of a dataset, with the `ahead` rows after them asked of its reader. */
  async #range(name: string, start: number, end: number, ahead: number): Promise<Batch> {
    const reader = this.#readers.get(name);
    if (!reader) return rangeBatch(this.#get(name), start, end);
    const rows = reader.range(start, end); // taken first: the read ahead then fits in the depth
    reader.prefetchRange(end, Math.min(reader.length, end + ahead));
    return await rows;
  }

  #get(name: string): Dataset {
    const ds = this.#data.get(name);
    if (!ds) throw new Error(`No dataset named ${name} was set on the pool`);
    return ds;
  }

  async trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    const ds = this.#get(data);
    const reader = this.#readers.get(data);
    let batch;
    if (reader) {
      const rows = reader.gather(req.indices); // taken first: the read ahead then fits in the depth
      if (req.next) reader.prefetch(req.next);
      batch = await rows;
    } else {
      batch = gatherRows(ds, req.indices);
    }
    let into = req.gradsInto;
    if (into?.length !== req.params.length) {
      if (this.#grads.length !== req.params.length) this.#grads = new Float32Array(req.params.length);
      into = this.#grads;
    }
    return [this.engine.trainSlice(req.params, req.state, batch, req.step, 0, { gradsInto: into })];
  }

  /** Loss and metric sums over the data set; `onBatch` sees the running sums after each batch. */
  async evaluate(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
    onBatch?: (batch: number, sums: EvalResult) => void,
  ): Promise<EvalResult> {
    const ds = this.#get(data);
    const total: EvalResult = {
      count: 0,
      lossSum: 0,
      metricSums: new Array(metricOffsets(this.engine.spec.metrics).total).fill(0),
      regLoss: 0,
    };
    for (let start = 0; start < ds.length; start += batchSize) {
      const rows = await this.#range(data, start, Math.min(ds.length, start + batchSize), batchSize);
      const r = this.engine.evaluate(params, state, rows);
      total.count += r.count;
      total.lossSum += r.lossSum;
      r.metricSums.forEach((m, i) => total.metricSums[i]! += m);
      total.regLoss = r.regLoss;
      onBatch?.(start / batchSize, total);
    }
    return total;
  }

  /** Model outputs for the data set; `onBatch` runs after each batch. */
  async predict(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
    onBatch?: (batch: number) => void,
  ): Promise<Float32Array> {
    const ds = this.#get(data);
    const parts: Float32Array[] = [];
    for (let start = 0; start < ds.length; start += batchSize) {
      const rows = await this.#range(data, start, Math.min(ds.length, start + batchSize), batchSize);
      parts.push(this.engine.predict(params, state, rows));
      onBatch?.(start / batchSize);
    }
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  close(): Promise<void> {
    for (const reader of this.#readers.values()) reader.close();
    this.#readers.clear();
    this.#data.clear();
    return Promise.resolve();
  }
}
