/**
 * The helper thread of the slice exchange (see slice_exchange.ts): its own NATS connection, listening
 * on `shoal.<job>.sync.*`. For each `gather` from the compute thread it publishes the slice's part,
 * waits for every slice's part of the same exchange (parts that came early are kept), writes them in
 * slice order into the shared result buffer and wakes the compute thread through the control word.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { NatsConnection } from "npm:nats@2.29.3";
import { connectResilient, decodeMessage, encodeMessage, jobSubjects, serve } from "../shared/io/nats/mod.ts";
import { SyncHeader } from "../shared/io/nats/mod.ts";
import { ABORTED, DONE, FAILED, type FromThread, type ToThread } from "./slice_exchange.ts";

/**
 * Milliseconds between re-sends of this slice's part while it waits: core NATS delivers at most once,
 * so a part lost in a reconnect would otherwise stall every slice until the step deadline. Receivers
 * keep one part per slice, so copies are harmless.
 */
const RESEND_MS = 500;

interface Pending {
  request: number;
  version: number;
  call: number;
  slices: number;
  length: number;
  result: SharedArrayBuffer;
  resend?: ReturnType<typeof setInterval>;
}

let nc: NatsConnection | undefined;
let control: Int32Array | undefined;
let job = "";
let worker = "";
let pending: Pending | undefined;
/** Parts by `version:call`, indexed by slice. */
const parts = new Map<string, Float32Array[]>();
/** Step attempts the coordinator aborted. */
const aborted = new Set<number>();

function post(message: FromThread): void {
  self.postMessage(message);
}

function settle(state: number): void {
  if (!pending || !control) return;
  clearInterval(pending.resend);
  Atomics.store(control, 1, pending.request);
  Atomics.store(control, 0, state);
  Atomics.notify(control, 0);
  pending = undefined;
}

/** Answers the pending gather when its attempt was aborted or all its parts are in. */
function tryFinish(): void {
  if (!pending) return;
  if (aborted.has(pending.version)) return settle(ABORTED);
  const got = parts.get(`${pending.version}:${pending.call}`);
  if (!got) return;
  for (let k = 0; k < pending.slices; k++) if (!got[k]) return;
  const out = new Float32Array(pending.result, 0, pending.slices * pending.length);
  for (let k = 0; k < pending.slices; k++) {
    const part = got[k]!;
    if (part.length !== pending.length) {
      console.error(
        `Worker ${worker}: slice ${k} sent ${part.length} values for exchange ${pending.call} of weights ` +
          `version ${pending.version}, this slice ${pending.length}: the workers run different models`,
      );
      return settle(FAILED);
    }
    out.set(part, k * pending.length);
  }
  settle(DONE);
}

/** Keeps one slice's part of exchange `call` of attempt `version` (a copy replaces it). */
function keep(version: number, call: number, slice: number, part: Float32Array): void {
  const key = `${version}:${call}`;
  const got = parts.get(key) ?? [];
  got[slice] = part;
  parts.set(key, got);
}

function onSync(data: Uint8Array): void {
  const { header, body } = decodeMessage(data, SyncHeader);
  if (header.job !== job) return;
  if (header.kind === "abort") {
    aborted.add(header.version);
  } else if (!pending || header.version >= pending.version) {
    keep(header.version, header.call, header.slice, new Float32Array(body.slice().buffer));
  }
  tryFinish();
}

/** Forgets parts and aborts of attempts older than `version`: attempts only move forward. */
function forgetBefore(version: number): void {
  for (const key of parts.keys()) if (Number(key.split(":")[0]) < version) parts.delete(key);
  for (const v of aborted) if (v < version) aborted.delete(v);
}

self.onmessage = async (e: MessageEvent<ToThread>) => {
  const message = e.data;
  try {
    switch (message.type) {
      case "start": {
        ({ job, name: worker } = message);
        control = new Int32Array(message.control);
        nc = await connectResilient(message.auth, {
          servers: message.servers,
          name: `shoal-worker-${worker}-sync`,
        });
        serve(nc, jobSubjects(job).syncAll, (msg) => onSync(msg.data), {
          onError: (error) => console.error(`Worker ${worker}: slice exchange: ${error}`),
        });
        await nc.flush();
        return post({ type: "ready" });
      }
      case "gather": {
        forgetBefore(message.version);
        const { request, version, call, slice, slices, part, result } = message;
        keep(version, call, slice, part);
        const encoded = encodeMessage({ kind: "part", job, version, slice, call }, part);
        const send = () => nc!.publish(jobSubjects(job).sync(version), encoded);
        if (pending) clearInterval(pending.resend);
        pending = { request, version, call, slices, length: part.length, result };
        if (slices > 1 && !aborted.has(version)) {
          send();
          pending.resend = setInterval(send, RESEND_MS);
        }
        return tryFinish();
      }
      case "cancel": {
        if (pending?.request !== message.request) return;
        clearInterval(pending.resend);
        pending = undefined;
        return;
      }
      case "close": {
        await nc?.drain().catch(() => {});
        post({ type: "closed" });
        return self.close();
      }
    }
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    console.error(`Worker ${worker}: slice exchange: ${text}`);
    if (message.type === "start") post({ type: "failed", error: text });
    else settle(FAILED);
  }
};
