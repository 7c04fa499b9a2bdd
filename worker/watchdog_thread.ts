/**
 * Makes SIGTERM and SIGINT end the worker process within {@link EXIT_GRACE_MS}, whatever its main
 * thread is doing. The main thread leaves its job cleanly on the signal when it can; but a thread
 * blocked in a long synchronous computation runs no signal handler, and a worker that ignores
 * SIGTERM holds its GPU until Kubernetes kills it. This thread hears the signal too, and kills the
 * process if it is still alive after the grace.
 *
 * @module
 */
/// <reference lib="deno.worker" />

/** Milliseconds the main thread gets to leave its job after SIGTERM or SIGINT. */
export const EXIT_GRACE_MS = 4000;

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    setTimeout(() => {
      console.error(
        `Worker (pid ${Deno.pid}) did not stop within ${EXIT_GRACE_MS} ms of ${signal}: killing it`,
      );
      Deno.kill(Deno.pid, "SIGKILL");
    }, EXIT_GRACE_MS);
  });
}
