/**
 * The worker process: parses its arguments, runs jobs until it is done, and exits with a code from
 * worker/exit_codes.ts. SIGTERM and SIGINT end it within 5 s: cleanly when it can, by force
 * (watchdog_thread.ts) when its main thread is blocked. `worker/main.ts` runs it; a program that wraps
 * the worker (a test harness) runs it with {@link WorkerHooks}.
 *
 * @module
 */
import { parseWorkerArgs, USAGE } from "./cli.ts";
import type { WorkerHooks } from "./worker.ts";

/** Runs a worker on command-line `args`, then exits the process. */
export async function workerProcess(args: string[], hooks?: WorkerHooks): Promise<never> {
  let options;
  try {
    options = parseWorkerArgs(args);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (!options) {
    console.log(USAGE);
    Deno.exit(0);
  }
  // Before any backend loads: a CUDA build reads this when it initializes.
  if (options.gpu !== undefined) Deno.env.set("CUDA_VISIBLE_DEVICES", String(options.gpu));
  const { STOP_REQUESTED } = await import("./stop_flag.ts");
  new Worker(new URL("./watchdog_thread.ts", import.meta.url).href, { type: "module" }).postMessage(
    STOP_REQUESTED.buffer,
  );
  const { runWorker } = await import("./worker.ts");
  const { workerExitCode } = await import("./exit_codes.ts");
  const controller = new AbortController();
  let stoppedBy: "SIGTERM" | "SIGINT" | undefined;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      stoppedBy ??= signal;
      controller.abort(new Error(`received ${signal}`));
    });
  }
  let exit;
  try {
    exit = await runWorker({ ...options, ...(hooks ? { hooks } : {}), signal: controller.signal });
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
  Deno.exit(workerExitCode(exit, options.job !== undefined, stoppedBy));
}
