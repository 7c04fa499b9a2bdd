/**
 * The helper thread of the slice exchange (see slice_exchange.ts): its own connection to the
 * coordinator, a `sync` data-plane connection or a NATS connection. For each `gather` from the
 * compute thread it sends the slice's part, waits for the coordinator's gathered parts of the same
 * exchange (or the attempt's abort), writes them into the shared result buffer and wakes the compute
 * thread through the control word.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { NatsConnection } from "npm:nats@2.29.3";
import { connectResilient, decodeMessage, encodeMessage, serve } from "../shared/io/nats/mod.ts";
import { dialDataPlane, type FrameChannel } from "../shared/io/data_plane/mod.ts";
import { DataFrame, decodeGathered, jobSubjects, SyncHeader } from "../shared/io/protocol/mod.ts";
import {
  ABORTED,
  DONE,
  type ExchangeRoute,
  FAILED,
  type FromThread,
  type ToThread,
} from "./slice_exchange.ts";

/**
 * Milliseconds between re-sends of this slice's part over NATS while it waits: core NATS delivers at
 * most once, so a part lost in a reconnect would otherwise stall every slice until the step deadline.
 * The coordinator keeps one part per slice and answers a late copy with the gathered parts again.
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

/** Sends parts; the coordinator's answers arrive through {@link onGathered} and {@link onAbort}. */
interface Route {
  send(version: number, slice: number, slices: number, call: number, part: Float32Array): void;
  close(): Promise<void>;
}

let route: Route | undefined;
let control: Int32Array | undefined;
let job = "";
let worker = "";
let pending: Pending | undefined;
/** Gathered parts that came before their gather, by `version:call`. */
const early = new Map<string, Float32Array[]>();
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

/** Answers the pending gather when its attempt was aborted or its gathered parts are in. */
function tryFinish(): void {
  if (!pending) return;
  if (aborted.has(pending.version)) return settle(ABORTED);
  const parts = early.get(`${pending.version}:${pending.call}`);
  if (!parts) return;
  if (parts.length !== pending.slices || parts.some((p) => p.length !== pending!.length)) {
    console.error(
      `Worker ${worker}: the gathered parts of exchange ${pending.call} of weights version ${pending.version} ` +
        `hold ${parts.length} parts of ${parts[0]?.length} values, this slice expects ${pending.slices} of ` +
        `${pending.length}: the workers run different models`,
    );
    return settle(FAILED);
  }
  const out = new Float32Array(pending.result, 0, pending.slices * pending.length);
  parts.forEach((part, k) => out.set(part, k * pending!.length));
  settle(DONE);
}

function onGathered(version: number, call: number, slices: number, body: Uint8Array): void {
  if (pending && version < pending.version) return;
  early.set(`${version}:${call}`, decodeGathered(body, slices));
  tryFinish();
}

function onAbort(version: number): void {
  aborted.add(version);
  tryFinish();
}

/** Forgets answers of attempts older than `version`: attempts only move forward. */
function forgetBefore(version: number): void {
  for (const key of early.keys()) if (Number(key.split(":")[0]) < version) early.delete(key);
  for (const v of aborted) if (v < version) aborted.delete(v);
}

async function natsRoute(r: Extract<ExchangeRoute, { via: "nats" }>): Promise<Route> {
  const nc: NatsConnection = await connectResilient(r.auth, {
    servers: r.servers,
    name: `shoal-worker-${worker}-sync`,
  });
  const subjects = jobSubjects(job);
  serve(nc, subjects.syncAll, (msg) => {
    const { header, body } = decodeMessage(msg.data, SyncHeader);
    if (header.job !== job) return;
    if (header.kind === "gathered") onGathered(header.version, header.call, header.slices, body);
    else if (header.kind === "abort") onAbort(header.version);
  }, { onError: (error) => console.error(`Worker ${worker}: slice exchange: ${error}`) });
  await nc.flush();
  return {
    send(version, slice, slices, call, part) {
      const encoded = encodeMessage({ kind: "part", job, worker, version, slice, slices, call }, part);
      const publish = () => nc.publish(subjects.part, encoded);
      publish();
      pending!.resend = setInterval(publish, RESEND_MS);
    },
    close: () => nc.drain().catch(() => {}),
  };
}

async function directRoute(r: Extract<ExchangeRoute, { via: "direct" }>): Promise<Route> {
  const { channel } = await dialDataPlane(r.addresses, {
    job,
    secret: r.secret,
    worker,
    role: "sync",
    maxBodyBytes: 64 * 1024 * 1024,
    ...(r.caCerts ? { caCerts: r.caCerts } : {}),
  });
  void readFrames(channel);
  return {
    send(version, slice, slices, call, part) {
      channel.send({ t: "part", version, slice, slices, call }, part).catch(() => {});
    },
    close: () => Promise.resolve(channel.close("the job ended")),
  };
}

async function readFrames(channel: FrameChannel): Promise<void> {
  for (;;) {
    const frame = await channel.next();
    if (!frame) break;
    const parsed = DataFrame.safeParse(frame.header);
    if (!parsed.success) continue;
    const f = parsed.data;
    if (f.t === "gathered") onGathered(f.version, f.call, f.slices, frame.body);
    else if (f.t === "abort") onAbort(f.version);
  }
  // The coordinator is gone or dropped this worker: a slice waiting now cannot finish.
  console.error(`Worker ${worker}: slice exchange: ${(await channel.ended).message}`);
  settle(FAILED);
}

// A SIGTERM wakes a slice blocked in an exchange, so the compute thread can act on it.
Deno.addSignalListener("SIGTERM", () => settle(ABORTED));

self.onmessage = async (e: MessageEvent<ToThread>) => {
  const message = e.data;
  try {
    switch (message.type) {
      case "start": {
        ({ job, name: worker } = message);
        control = new Int32Array(message.control);
        route = message.route.via === "nats"
          ? await natsRoute(message.route)
          : await directRoute(message.route);
        return post({ type: "ready" });
      }
      case "gather": {
        forgetBefore(message.version);
        const { request, version, call, slice, slices, part, result } = message;
        if (pending) clearInterval(pending.resend);
        pending = { request, version, call, slices, length: part.length, result };
        if (slices === 1) early.set(`${version}:${call}`, [part]);
        else if (!aborted.has(version)) route!.send(version, slice, slices, call, part);
        return tryFinish();
      }
      case "cancel": {
        if (pending?.request !== message.request) return;
        clearInterval(pending.resend);
        pending = undefined;
        return;
      }
      case "close": {
        await route?.close();
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
