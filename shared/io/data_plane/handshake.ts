/**
 * How a data-plane connection proves who is on each end, before any tensor moves. The coordinator
 * hands a random per-job secret to workers that joined over NATS (so only clients the NATS server
 * authenticated learn it); on a new connection:
 *
 * 1. coordinator → worker: `challenge` with the job and a fresh nonce;
 * 2. worker → coordinator: `auth` with its name, the connection's role, its own nonce, and
 *    HMAC-SHA256(secret, "client" ‖ job ‖ worker ‖ role ‖ coordinator nonce);
 * 3. coordinator → worker: `welcome` with HMAC-SHA256(secret, "server" ‖ job ‖ worker ‖ worker nonce)
 *    (so the worker knows it reached its own job's coordinator), or `refused` with the reason.
 *
 * No frame of the handshake has a body, and the reader accepts none until it ends: a peer without
 * the secret cannot make either side allocate more than one read-ahead buffer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "npm:zod@4.6.7";
import type { FrameChannel } from "./channel.ts";

/** Version of the data-plane protocol, checked in the handshake. */
export const DATA_PROTOCOL = "shoal-data/1";
/** Milliseconds a handshake may take before the connection is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/**
 * What a connection carries: a worker's requests and replies, its slice exchange, or (worker to
 * worker) the ring's shards and the chained weights.
 */
export type ChannelRole = "work" | "sync" | "ring";

/** The data-plane handshake failed: the peer lacks the secret, or speaks another protocol. */
export class DataPlaneAuthError extends Error {
  override name = "DataPlaneAuthError";
}

const Hex = z.string().regex(/^[0-9a-f]{64}$/);
const Name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** The coordinator's first frame. */
const Challenge = z.object({ t: z.literal("challenge"), protocol: z.string(), job: Name, nonce: Hex });
/** The worker's answer to the challenge. */
const Auth = z.object({
  t: z.literal("auth"),
  protocol: z.string(),
  job: Name,
  worker: Name,
  role: z.enum(["work", "sync", "ring"]),
  nonce: Hex,
  proof: Hex,
});
/** The coordinator's verdict. */
const Answer = z.discriminatedUnion("t", [
  z.object({ t: z.literal("welcome"), proof: Hex }),
  z.object({ t: z.literal("refused"), reason: z.string() }),
]);

/** A fresh job secret: 32 random bytes, hex. */
export function newJobSecret(): string {
  return newNonce();
}

/** A fresh nonce: 32 random bytes, hex. */
export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

/** The worker's proof: HMAC-SHA256(secret, "client" ‖ job ‖ worker ‖ role ‖ coordinator nonce), hex. */
export function clientProof(
  secret: string,
  job: string,
  worker: string,
  role: ChannelRole,
  nonce: string,
): string {
  return hmac(secret, "client", job, worker, role, nonce);
}

/** The coordinator's proof: HMAC-SHA256(secret, "server" ‖ job ‖ worker ‖ role ‖ worker nonce), hex. */
export function serverProof(
  secret: string,
  job: string,
  worker: string,
  role: ChannelRole,
  nonce: string,
): string {
  return hmac(secret, "server", job, worker, role, nonce);
}

/** True when `proof` equals `expected` (hex), compared in constant time. */
export function proofMatches(proof: string, expected: string): boolean {
  const a = Buffer.from(proof, "hex"), b = Buffer.from(expected, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

function hmac(
  secret: string,
  side: string,
  job: string,
  worker: string,
  role: string,
  nonce: string,
): string {
  return createHmac("sha256", secret).update(`${DATA_PROTOCOL} ${side} ${job} ${worker} ${role} ${nonce}`)
    .digest("hex");
}

/** Who proved what on an accepted connection. */
export interface Admitted {
  worker: string;
  role: ChannelRole;
}

/** Options of {@link acceptHandshake}. */
export interface AcceptOptions {
  job: string;
  secret: string;
  /** Why `worker` may not connect now (not a member of the job), or `undefined`. */
  refusal?: (worker: string) => string | undefined;
  timeoutMs?: number;
}

/**
 * The coordinator's side. Resolves with the worker and role, or throws a
 * {@link DataPlaneAuthError} after telling the peer why (and the caller closes the channel).
 */
export async function acceptHandshake(channel: FrameChannel, opts: AcceptOptions): Promise<Admitted> {
  return await withTimeout(channel, opts.timeoutMs, async () => {
    const nonce = newNonce();
    await channel.send({ t: "challenge", protocol: DATA_PROTOCOL, job: opts.job, nonce });
    const frame = await channel.next();
    if (!frame) throw new DataPlaneAuthError(`before authenticating, ${(await channel.ended).message}`);
    const auth = Auth.safeParse(frame.header);
    const refuse = async (reason: string): Promise<never> => {
      await channel.send({ t: "refused", reason }).catch(() => {});
      throw new DataPlaneAuthError(reason);
    };
    if (!auth.success) return await refuse("its first frame is not a Shoal data-plane auth frame");
    const a = auth.data;
    if (a.protocol !== DATA_PROTOCOL) {
      return await refuse(
        `it speaks ${a.protocol}, this coordinator ${DATA_PROTOCOL}: run the same Shoal version`,
      );
    }
    if (a.job !== opts.job) return await refuse(`it asked for job ${a.job}, this is job ${opts.job}`);
    if (!proofMatches(a.proof, clientProof(opts.secret, a.job, a.worker, a.role, nonce))) {
      return await refuse(`worker ${a.worker} did not prove the secret of job ${opts.job}`);
    }
    const refusal = opts.refusal?.(a.worker);
    if (refusal !== undefined) return await refuse(refusal);
    await channel.send({ t: "welcome", proof: serverProof(opts.secret, a.job, a.worker, a.role, a.nonce) });
    return { worker: a.worker, role: a.role };
  });
}

/** Options of {@link offerHandshake}. */
export interface OfferOptions {
  job: string;
  secret: string;
  worker: string;
  role: ChannelRole;
  timeoutMs?: number;
}

/** The worker's side: proves the secret, checks the coordinator's proof; throws {@link DataPlaneAuthError}. */
export async function offerHandshake(channel: FrameChannel, opts: OfferOptions): Promise<void> {
  await withTimeout(channel, opts.timeoutMs, async () => {
    const first = await channel.next();
    if (!first) throw new DataPlaneAuthError(`before the challenge, ${(await channel.ended).message}`);
    const { auth, nonce } = answerChallenge(first.header, opts, channel.peer);
    await channel.send(auth);
    const frame = await channel.next();
    if (!frame) throw new DataPlaneAuthError(`during the handshake, ${(await channel.ended).message}`);
    checkVerdict(frame.header, opts, nonce, channel.peer);
  });
}

/**
 * The worker's answer to the coordinator's first frame: the `auth` frame to send and the nonce the
 * coordinator must prove the secret over. Throws a {@link DataPlaneAuthError} for a frame that is no
 * challenge of this protocol and job.
 */
export function answerChallenge(
  header: unknown,
  opts: OfferOptions,
  peer: string,
): { auth: z.output<typeof Auth>; nonce: string } {
  const challenge = Challenge.safeParse(header);
  if (!challenge.success) throw new DataPlaneAuthError(`${peer} is not a Shoal data-plane listener`);
  const c = challenge.data;
  if (c.protocol !== DATA_PROTOCOL) {
    throw new DataPlaneAuthError(`${peer} speaks ${c.protocol}, this worker ${DATA_PROTOCOL}`);
  }
  if (c.job !== opts.job) throw new DataPlaneAuthError(`${peer} serves job ${c.job}, not job ${opts.job}`);
  const nonce = newNonce();
  return {
    nonce,
    auth: {
      t: "auth",
      protocol: DATA_PROTOCOL,
      job: opts.job,
      worker: opts.worker,
      role: opts.role,
      nonce,
      proof: clientProof(opts.secret, opts.job, opts.worker, opts.role, c.nonce),
    },
  };
}

/** Checks the coordinator's verdict on the worker's `auth` frame; throws a {@link DataPlaneAuthError} unless welcomed. */
export function checkVerdict(header: unknown, opts: OfferOptions, nonce: string, peer: string): void {
  const answer = Answer.safeParse(header);
  if (!answer.success) throw new DataPlaneAuthError(`${peer} answered the handshake with no verdict`);
  if (answer.data.t === "refused") {
    throw new DataPlaneAuthError(`${peer} refused the connection: ${answer.data.reason}`);
  }
  if (!proofMatches(answer.data.proof, serverProof(opts.secret, opts.job, opts.worker, opts.role, nonce))) {
    throw new DataPlaneAuthError(`${peer} did not prove the secret of job ${opts.job}`);
  }
}

async function withTimeout<T>(
  channel: FrameChannel,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
  run: () => Promise<T>,
): Promise<T> {
  const timer = setTimeout(() => channel.close(`no handshake within ${timeoutMs} ms`), timeoutMs);
  try {
    const result = await run();
    if (channel.isClosed) throw new DataPlaneAuthError((await channel.ended).message);
    return result;
  } catch (error) {
    if (error instanceof DataPlaneAuthError) throw error;
    throw new DataPlaneAuthError(channel.isClosed ? (await channel.ended).message : String(error), {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}
