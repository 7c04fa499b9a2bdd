/**
 * Which reduction a step's attempt uses: `star` (every gradient to the coordinator, the weights to
 * every worker: 2·N·S bytes on the coordinator's link per step, for N workers and S model bytes) or
 * `ring` (a reduce-scatter among the workers, one shard each to the coordinator, the weights down a
 * chain of workers: about 2·S on the coordinator's link and on each worker's, whatever N is, for
 * 2·(N − 1) chunk hops of latency). `auto` picks the ring from {@link RING_MIN_WORKERS} workers on,
 * for a model of at least {@link RING_MIN_MODEL_BYTES}, when some worker's bytes cross a link (a
 * worker that shares memory with the coordinator costs its link nothing).
 *
 * A ring needs every worker of the attempt on the data plane with a ring address that the others
 * reach; otherwise the step runs on the star and {@link AllreduceChoice.reason} says why. Over a TLS
 * data plane only `tls://` ring addresses (and Unix sockets) count: a worker without a ring
 * certificate offers none. A worker whose ring address another could not dial stays out of rings
 * (with `auto` and with `ring`) until it joins again with other addresses.
 *
 * @module
 */
import type { Allreduce } from "../../shared/io/protocol/mod.ts";
import { ringDials } from "../../shared/io/data_plane/mod.ts";

/** Workers from which `auto` reduces on a ring. */
export const RING_MIN_WORKERS = 3;
/** Model bytes (params and state, f32) from which `auto` reduces on a ring: 1 MiB. */
export const RING_MIN_MODEL_BYTES = 1 << 20;

/** What to do about a ring address that workers cannot reach, for messages. */
export const RING_PORT_FIX = "open the workers' ring port to each other (start workers with " +
  "--ring-listen 0.0.0.0:PORT and admit TCP PORT between them), or use allreduce star";

/** What to do about workers that offer no TLS ring address on a TLS data plane, for messages. */
export const RING_TLS_FIX =
  "start them with --ring-tls-cert FILE --ring-tls-key FILE (a certificate for the " +
  "address they advertise, signed by the CA of --nats-tls-ca), or use allreduce star";

/** What the choice needs to know of one worker of the attempt. */
export interface RingCandidate {
  name: string;
  /** Where it listens for ring neighbours; none when it does not (a NATS link, an older worker). */
  ringAddresses?: readonly string[] | undefined;
  /** True when its weights and gradients travel through memory it shares with the coordinator. */
  sharesMemory: boolean;
  /** Why another worker could not reach its ring addresses, when one could not. */
  unreachable?: string | undefined;
}

/** The reduction of an attempt, and why. */
export interface AllreduceChoice {
  use: "star" | "ring";
  reason: string;
}

/** See the module doc. */
export function chooseAllreduce(
  mode: Allreduce,
  workers: readonly RingCandidate[],
  modelBytes: number,
  dataTls = false,
): AllreduceChoice {
  const n = workers.length;
  if (mode === "star") return { use: "star", reason: "allreduce is star" };
  if (n < 2) return { use: "star", reason: `${n} worker needs no reduction among workers` };
  const dialed = (w: RingCandidate) => w.ringAddresses?.some((a) => ringDials(a, dataTls)) ?? false;
  const unreachable = workers.filter((w) => !dialed(w)).map((w) => w.name);
  if (unreachable.length > 0) {
    return {
      use: "star",
      reason: dataTls
        ? `worker(s) ${
          unreachable.join(", ")
        } cannot take part in a ring over the TLS data plane (no ring certificate, or no data-plane link): ${RING_TLS_FIX}`
        : `worker(s) ${unreachable.join(", ")} cannot take part in a ring (no data-plane link)`,
    };
  }
  const blocked = workers.filter((w) => w.unreachable !== undefined);
  if (blocked.length > 0) {
    return {
      use: "star",
      reason: `${blocked.map((w) => w.unreachable).join("; ")}: ${RING_PORT_FIX}`,
    };
  }
  if (mode === "ring") return { use: "ring", reason: "allreduce is ring" };
  if (n < RING_MIN_WORKERS) {
    return { use: "star", reason: `auto: ${n} workers, a ring pays from ${RING_MIN_WORKERS}` };
  }
  if (modelBytes < RING_MIN_MODEL_BYTES) {
    return { use: "star", reason: `auto: the model's ${modelBytes} bytes are below ${RING_MIN_MODEL_BYTES}` };
  }
  if (workers.every((w) => w.sharesMemory)) {
    return {
      use: "star",
      reason: "auto: every worker shares memory with the coordinator, no link carries the bytes",
    };
  }
  return { use: "ring", reason: `auto: ${n} workers, ${modelBytes} model bytes over links` };
}
