/** The NATS worker pool: N worker processes compute slices of each step. */
import type { Engine } from "../shared/model/mod.ts";
import type { WorkerPool } from "./pool.ts";

/** How to reach or start the workers. */
export interface NatsPoolOptions {
  /** Workers to wait for (external) or to spawn (embedded). */
  workers: number;
  /** An existing server; without it an embedded nats-server is started with local workers. */
  nats?: string;
  /** GPU ids: one local worker per id, with CUDA_VISIBLE_DEVICES set. */
  gpus?: number[];
  backend: string;
  minWorkers?: number;
  joinTimeoutSeconds?: number;
  gradEncoding?: "f32" | "bf16";
}

/** Starts (or joins) the workers and returns a pool bound to the engine's model and loss. */
export function createNatsPool(_engine: Engine, _opts: NatsPoolOptions): Promise<WorkerPool> {
  return Promise.reject(new Error("Distributed training is not available yet"));
}
