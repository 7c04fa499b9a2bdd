/**
 * The worker process (`deno task worker`): joins jobs on a NATS server and computes what the
 * coordinator asks for. See worker/process.ts; exit codes: worker/exit_codes.ts.
 *
 * @module
 */
import { workerProcess } from "./process.ts";

await workerProcess(Deno.args);
