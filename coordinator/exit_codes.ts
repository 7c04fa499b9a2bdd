/**
 * Exit codes of `deno task train`, chosen so that a scheduler can act on them without reading logs.
 * Kubernetes' `podFailurePolicy` (deploy/k8s) fails the run on {@link EXIT_BAD_INPUT} and retries a
 * pod that ended with {@link EXIT_SIGTERM} (drained or deleted; the backup holds its position) or 137
 * (SIGKILL, out of memory).
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | the job finished |
 * | 1 | any other failure (a bug, a lost server): a retry may help |
 * | 2 | bad config or input: a retry cannot help, fix the value the message names |
 * | 75 | not enough workers joined within `--join-timeout` (EX_TEMPFAIL); the backup is kept |
 * | 130 | SIGINT (Ctrl-C); the backup is written |
 * | 143 | SIGTERM; the backup is written, a rerun with the same options resumes from it |
 *
 * @module
 */
import { NotEnoughWorkersError, StoppedWaitingError } from "./distributed/pool.ts";
import { JobConfigError } from "./job.ts";
import { TrainingInterruptedError } from "./trainer.ts";
import { DatasetError } from "../shared/io/dataset_error.ts";

/** The job finished. */
export const EXIT_OK = 0;
/** A failure a retry may cure. */
export const EXIT_FAILURE = 1;
/** Bad config or input: a retry cannot help. */
export const EXIT_BAD_INPUT = 2;
/** Fewer workers than the job needs joined in time (sysexits.h EX_TEMPFAIL). */
export const EXIT_NOT_ENOUGH_WORKERS = 75;
/** Stopped by SIGINT (128 + 2), as shells report it. */
export const EXIT_SIGINT = 130;
/** Stopped by SIGTERM (128 + 15), as shells and Kubernetes report it. */
export const EXIT_SIGTERM = 143;

/** The exit code of a process stopped by `signal`: 128 plus the signal's number. */
export function signalExitCode(signal: "SIGTERM" | "SIGINT"): number {
  return signal === "SIGTERM" ? EXIT_SIGTERM : EXIT_SIGINT;
}

/**
 * The exit code for an error that ended a job. `stoppedBy` is the signal that stopped the run, if
 * one did: a run it interrupted exits as that signal would have ended the process.
 */
export function exitCodeFor(error: unknown, stoppedBy?: "SIGTERM" | "SIGINT"): number {
  if (error instanceof TrainingInterruptedError || error instanceof StoppedWaitingError) {
    return signalExitCode(stoppedBy ?? "SIGTERM");
  }
  if (error instanceof NotEnoughWorkersError) return EXIT_NOT_ENOUGH_WORKERS;
  // Bad arguments raise the built-in TypeError and RangeError (errors.ts).
  if (
    error instanceof JobConfigError || error instanceof DatasetError || error instanceof TypeError ||
    error instanceof RangeError
  ) {
    return EXIT_BAD_INPUT;
  }
  return EXIT_FAILURE;
}
