/**
 * Set (to 1) when the worker process received SIGTERM or SIGINT: read by waits that block the main
 * thread (a BatchNorm exchange on a blocking socket), which give up so the process can leave its job.
 * Shared with the watchdog thread (watchdog_thread.ts), which hears the signal even while the main
 * thread is blocked.
 *
 * @module
 */
export const STOP_REQUESTED: Int32Array = new Int32Array(new SharedArrayBuffer(4));

/** True once a stop was requested. */
export function stopRequested(): boolean {
  return Atomics.load(STOP_REQUESTED, 0) === 1;
}
