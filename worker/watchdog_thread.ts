/**
 * Makes SIGTERM and SIGINT end the worker process within {@link EXIT_GRACE_MS}, whatever its main
 * thread is doing. The main thread leaves its job cleanly on the signal when it can; but a thread
 * blocked in a long synchronous computation runs no signal handler, and a worker that ignores
 * SIGTERM holds its GPU until Kubernetes kills it. This thread hears the signal too: it raises the
 * stop flag that blocking waits check, and kills the process if it is still alive after the grace.
 *
 * @module
 */
/// <reference lib="deno.worker" />

/** Milliseconds the main thread gets to leave its job after SIGTERM or SIGINT. */
export const EXIT_GRACE_MS = 4000;

/** The main thread's stop flag (stop_flag.ts), posted to this thread when it starts. */
let stop: Int32Array | undefined;
self.onmessage = (e: MessageEvent<SharedArrayBuffer>) => {
  stop = new Int32Array(e.data);
};

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    if (stop) Atomics.store(stop, 0, 1);
    setTimeout(() => {
      console.error(
        `Worker (pid ${Deno.pid}) did not stop within ${EXIT_GRACE_MS} ms of ${signal}: killing it`,
      );
      Deno.kill(Deno.pid, "SIGKILL");
    }, EXIT_GRACE_MS);
  });
}
