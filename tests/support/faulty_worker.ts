/**
 * A worker that misbehaves once, for tests of the coordinator's defences: the real worker process
 * (worker/process.ts) with `--fault KIND` taken from its arguments and applied through its hooks.
 * Run it as the pool's worker entry (`distribute.workerEntry`).
 *
 * - `nan-once`: a NaN in the first training reply's gradient;
 * - `wrong-length-once`: that gradient one value short;
 * - `wrong-step-once`, `wrong-job-once`, `wrong-worker-once`: that reply for another step, job, or
 *   under another worker's name;
 * - `exit-once`: the process ends (code 3) when the first training request arrives;
 * - `sigkill-at-step-3`, `sigstop-at-step-3`: the process sends itself SIGKILL or SIGSTOP when the
 *   training request of step 3 arrives (its weights forwarded down a ring's chain, so its neighbours
 *   compute and then wait for it in the ring).
 *
 * @module
 */
import { workerProcess } from "../../worker/process.ts";
import type { TrainReplyFields, WorkerHooks } from "../../worker/worker.ts";

/** This file's path, for `distribute.workerEntry`. */
export const FAULTY_WORKER: string = new URL(import.meta.url).pathname;

const FAULTS = [
  "nan-once",
  "wrong-length-once",
  "wrong-step-once",
  "wrong-job-once",
  "wrong-worker-once",
  "exit-once",
  "sigkill-at-step-3",
  "sigstop-at-step-3",
] as const;
type Fault = typeof FAULTS[number];

/** The hooks that inject `fault` once. */
function faultHooks(fault: Fault, name: string): WorkerHooks {
  let pending = true;
  const signals = fault === "sigkill-at-step-3" || fault === "sigstop-at-step-3";
  return {
    beforeTrain(step) {
      if (fault === "exit-once") Deno.exit(3);
      if (signals && step === 3 && pending) {
        pending = false;
        console.warn(`Worker ${name}: injecting test fault ${fault}`);
        Deno.kill(Deno.pid, fault === "sigkill-at-step-3" ? "SIGKILL" : "SIGSTOP");
      }
    },
    trainReply<H extends TrainReplyFields>(reply: { header: H; grads: Float32Array }) {
      if (!pending || signals) return reply;
      pending = false;
      const { header, grads } = reply;
      console.warn(`Worker ${name}: injecting test fault ${fault} at step ${header.step}`);
      switch (fault) {
        case "nan-once": {
          const faulty = grads.slice();
          faulty[0] = NaN;
          return { header, grads: faulty };
        }
        case "wrong-length-once":
          return { header, grads: grads.subarray(0, grads.length - 1) };
        case "wrong-step-once":
          return { header: { ...header, step: header.step + 1 }, grads };
        case "wrong-job-once":
          return { header: { ...header, job: `${header.job}x` }, grads };
        case "wrong-worker-once":
          return { header: { ...header, worker: `${header.worker}x` }, grads };
        default:
          return reply;
      }
    },
  };
}

if (import.meta.main) {
  const args = [...Deno.args];
  const at = args.indexOf("--fault");
  const fault = at >= 0 ? args.splice(at, 2)[1] : undefined;
  if (fault !== undefined && !(FAULTS as readonly string[]).includes(fault)) {
    console.error(`--fault must be one of ${FAULTS.join(", ")}: received ${fault}`);
    Deno.exit(2);
  }
  const name = args[args.indexOf("--name") + 1] ?? "worker";
  await workerProcess(args, fault === undefined ? undefined : faultHooks(fault as Fault, name));
}
