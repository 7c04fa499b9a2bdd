/** The in-process worker pool: the same Engine a worker process runs, called directly. */
import type { Engine, EvalResult, SliceResult } from "../shared/model/mod.ts";
import { type Dataset, gatherRows, rangeBatch } from "./data.ts";
import type { StepRequest, WorkerPool } from "./pool.ts";

export class LocalPool implements WorkerPool {
  readonly workers = 0;
  readonly #data = new Map<string, Dataset>();
  /** The gradient of the latest step, written again by the next. */
  #grads = new Float32Array(0);

  constructor(readonly engine: Engine, readonly backend: string) {}

  setData(name: string, data: Dataset): Promise<void> {
    this.#data.set(name, data);
    return Promise.resolve();
  }

  #get(name: string): Dataset {
    const ds = this.#data.get(name);
    if (!ds) throw new Error(`No dataset named ${name} was set on the pool`);
    return ds;
  }

  trainStep(data: string, req: StepRequest): Promise<SliceResult[]> {
    const batch = gatherRows(this.#get(data), req.indices);
    if (this.#grads.length !== req.params.length) this.#grads = new Float32Array(req.params.length);
    return Promise.resolve([
      this.engine.trainSlice(req.params, req.state, batch, req.step, 0, undefined, this.#grads),
    ]);
  }

  /** Loss and metric sums over the data set; `onBatch` sees the running sums after each batch. */
  evaluate(
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
      metricSums: this.engine.spec.metrics.map(() => 0),
      regLoss: 0,
    };
    for (let start = 0; start < ds.length; start += batchSize) {
      const r = this.engine.evaluate(
        params,
        state,
        rangeBatch(ds, start, Math.min(ds.length, start + batchSize)),
      );
      total.count += r.count;
      total.lossSum += r.lossSum;
      r.metricSums.forEach((m, i) => total.metricSums[i]! += m);
      total.regLoss = r.regLoss;
      onBatch?.(start / batchSize, total);
    }
    return Promise.resolve(total);
  }

  /** Model outputs for the data set; `onBatch` runs after each batch. */
  predict(
    data: string,
    params: Float32Array,
    state: Float32Array,
    batchSize: number,
    onBatch?: (batch: number) => void,
  ): Promise<Float32Array> {
    const ds = this.#get(data);
    const parts: Float32Array[] = [];
    for (let start = 0; start < ds.length; start += batchSize) {
      parts.push(
        this.engine.predict(params, state, rangeBatch(ds, start, Math.min(ds.length, start + batchSize))),
      );
      onBatch?.(start / batchSize);
    }
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return Promise.resolve(out);
  }

  close(): Promise<void> {
    this.#data.clear();
    return Promise.resolve();
  }
}
