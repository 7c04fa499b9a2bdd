/** Test-only faults of the worker process (`--fault`). */

/**
 * Faults a worker can inject into its first training reply, for tests of the coordinator's checks:
 * a NaN in the gradient, a gradient one value short, a reply for another step, for another job, or
 * under another worker's name; `exit-once` ends the process when the first training request arrives.
 */
export type Fault =
  | "nan-once"
  | "wrong-length-once"
  | "wrong-step-once"
  | "wrong-job-once"
  | "wrong-worker-once"
  | "exit-once";

/** Every {@link Fault}, for CLI validation. */
export const FAULTS: readonly Fault[] = [
  "nan-once",
  "wrong-length-once",
  "wrong-step-once",
  "wrong-job-once",
  "wrong-worker-once",
  "exit-once",
];
