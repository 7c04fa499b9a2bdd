/**
 * Exit codes of `deno task worker`, for the scheduler that runs it. A worker that serves every job
 * (no `--job`) serves until stopped, so a signal is its normal end (0). A worker bound to one job
 * (`--job ID`, a pod of a Kubernetes Job) completes only when that job ended: a signal then exits 143
 * or 130 so that a drained pod is not counted as a completion, and a job that never came (or never
 * came back) exits 75 so that the pod may be retried.
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | the bound job ended (or an unbound worker was stopped) |
 * | 1 | a failure: the job refused its model, the connection could not be made |
 * | 2 | a bad flag |
 * | 75 | the bound job did not announce itself within `--join-timeout` (EX_TEMPFAIL) |
 * | 130, 143 | a bound worker stopped by SIGINT or SIGTERM |
 *
 * @module
 */
import type { WorkerExit } from "./worker.ts";

/** The exit code for how `runWorker` (worker.ts) ended. */
export function workerExitCode(exit: WorkerExit, bound: boolean, stoppedBy?: "SIGTERM" | "SIGINT"): number {
  switch (exit) {
    case "ended":
      return 0;
    case "refused":
      return 1;
    case "timeout":
      return 75;
    case "aborted":
      if (!bound) return 0;
      return stoppedBy === "SIGINT" ? 130 : 143;
  }
}
