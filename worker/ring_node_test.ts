import assert from "node:assert/strict";
import { newJobSecret } from "../shared/io/data_plane/mod.ts";
import { weightedSum } from "../shared/model/mod.ts";
import { RING_CHUNK_FLOATS, shardBounds } from "../shared/allreduce/mod.ts";
import type { RingPeer } from "../shared/io/protocol/mod.ts";
import { RingAbortedError, RingNode, type RingTls, RingUnreachableError } from "./ring_node.ts";
import { makeCertificates } from "../tests/support/certificates.ts";

/**
 * `n` ring nodes of one job on Unix sockets (on loopback TCP with `tcp`, over TLS with `tls`), cutting
 * shards in chunks of `chunkFloats` values.
 */
async function nodes(
  n: number,
  chunkFloats: number,
  { tcp = false, tls, secret = newJobSecret() }: { tcp?: boolean; tls?: RingTls; secret?: string } = {},
): Promise<{ nodes: RingNode[]; ring: RingPeer[] } & AsyncDisposable> {
  const made = await Promise.all(
    Array.from({ length: n }, (_, k) =>
      RingNode.start({
        job: "ringtest",
        secret,
        name: `w${k}`,
        unix: !tcp,
        ...(tcp ? { tcp: { listen: { hostname: "127.0.0.1", port: 0 } } } : {}),
        ...(tls ? { tls } : {}),
        maxBodyBytes: 1 << 20,
        chunkFloats,
        onWeightsPart: () => {},
      })),
  );
  return {
    nodes: made,
    ring: made.map((node, k) => ({ name: `w${k}`, addresses: [...node.addresses] })),
    [Symbol.asyncDispose]: async () => void await Promise.all(made.map((node) => node.close())),
  };
}

function random(length: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length },
    () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1,
  );
}

/** One reduce-scatter result: a rank's shard of the weighted sum. */
type Shard = Awaited<ReturnType<RingNode["reduceScatter"]>>;

/**
 * Every rank's reduce-scatter of attempt `version` at once. A reduce-scatter writes its partial sums
 * over the gradient it is given, so each gets a copy unless `inPlace`.
 */
function reduceAll(
  ring: { nodes: RingNode[]; ring: RingPeer[] },
  grads: Float32Array[],
  weights: readonly number[],
  version = 1,
  inPlace = false,
): Promise<Shard[]> {
  return Promise.all(
    ring.nodes.map((node, rank) =>
      node.reduceScatter({
        version,
        ring: ring.ring,
        rank,
        grads: inPlace ? grads[rank]! : grads[rank]!.slice(),
        weight: weights[rank]!,
      })
    ),
  );
}

/** The largest difference between the shards and the same values of `star`. */
function maxDiffToStar(shards: Shard[], star: Float32Array): number {
  let diff = 0;
  for (const s of shards) s.values.forEach((v, i) => diff = Math.max(diff, Math.abs(v - star[s.start + i]!)));
  return diff;
}

Deno.test("ring nodes on real sockets reduce-scatter to the star's weighted sum, the same bits every time", async () => {
  for (const n of [2, 3, 5]) {
    await using ring = await nodes(n, 5);
    const length = 37;
    const grads = Array.from({ length: n }, (_, k) => random(length, 3 + k));
    const weights = Array.from({ length: n }, (_, k) => (k + 1) / ((n * (n + 1)) / 2));
    const star = new Float32Array(length);
    weightedSum(star, grads, weights);
    const runs: Float32Array[] = [];
    for (const version of [1, 2]) {
      const shards = await reduceAll(ring, grads, weights, version);
      const reduced = new Float32Array(length);
      shards.forEach((s, rank) => {
        assert.deepEqual([s.start, s.end], shardBounds(length, n, rank));
        reduced.set(s.values, s.start);
      });
      const diff = maxDiffToStar(shards, star);
      assert.ok(diff <= 1e-6, `${n} ranks: max difference to the star ${diff}`);
      runs.push(reduced);
    }
    assert.deepEqual(runs[1], runs[0], `${n} ranks: two attempts gave different bits`);
  }
});

/** TLS of test ring nodes: the certificate for 127.0.0.1 of tests/support/certificates.ts and its CA. */
async function ringTls(dir: string): Promise<RingTls> {
  const certs = await makeCertificates(dir);
  return {
    cert: await Deno.readTextFile(certs.serverCert),
    key: await Deno.readTextFile(certs.serverKey),
    caCerts: [await Deno.readTextFile(certs.ca)],
  };
}

Deno.test("ring nodes over TLS reduce-scatter like plain ones; a plain dial never reaches a TLS ring, nor a TLS dial a plain one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-ring-tls-" });
  try {
    const tls = await ringTls(dir);
    const secret = newJobSecret();
    await using secure = await nodes(3, 5, { tcp: true, tls, secret });
    await using plain = await nodes(2, 5, { tcp: true, secret });
    for (const peer of secure.ring) assert.match(peer.addresses.join(" "), /^tls:\/\/127\.0\.0\.1:\d+$/);
    for (const peer of plain.ring) assert.match(peer.addresses.join(" "), /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const length = 23;
    const grads = Array.from({ length: 3 }, (_, k) => random(length, 5 + k));
    const star = new Float32Array(length);
    weightedSum(star, grads, [1 / 3, 1 / 3, 1 / 3]);
    const diff = maxDiffToStar(await reduceAll(secure, grads, [1 / 3, 1 / 3, 1 / 3]), star);
    assert.ok(diff <= 1e-6, `max difference to the star ${diff}`);

    const chunk = (to: string) => ({ t: "rchunk" as const, version: 2, to, round: 0, chunk: 0 });
    const tlsPeer = secure.ring[0]!, plainPeer = plain.ring[0]!;
    await assert.rejects(
      plain.nodes[1]!.send(tlsPeer, chunk(tlsPeer.name), new Float32Array(4)),
      (e) => e instanceof RingUnreachableError && /offers only tls:\/\/ addresses/.test(e.message),
    );
    await assert.rejects(
      secure.nodes[1]!.send(plainPeer, chunk(plainPeer.name), new Float32Array(4)),
      (e) => e instanceof RingUnreachableError && /offers no tls:\/\/ address/.test(e.message),
    );
    // Addresses that lie about their kind: the handshake fails on the wire either way.
    const relabelled = (peer: RingPeer, from: string, to: string) => ({
      name: peer.name,
      addresses: peer.addresses.map((a) => a.replace(from, to)),
    });
    await assert.rejects(
      plain.nodes[1]!.send(relabelled(tlsPeer, "tls:", "tcp:"), chunk(tlsPeer.name), new Float32Array(4)),
      RingUnreachableError,
    );
    await assert.rejects(
      secure.nodes[1]!.send(
        relabelled(plainPeer, "tcp:", "tls:"),
        chunk(plainPeer.name),
        new Float32Array(4),
      ),
      RingUnreachableError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an aborted attempt ends a rank's wait for its neighbour with the reason", async () => {
  await using ring = await nodes(2, 4);
  const waiting = ring.nodes[0]!.reduceScatter({
    version: 7,
    ring: ring.ring,
    rank: 0,
    grads: random(10, 1),
    weight: 0.5,
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  ring.nodes[0]!.abort(7, "worker w1 was lost");
  await assert.rejects(waiting, (e) => e instanceof RingAbortedError && /worker w1 was lost/.test(e.message));
  // The next attempt runs, and chunks of the aborted one are not taken for it.
  const grads = [random(10, 1), random(10, 2)];
  const shards = await reduceAll(ring, grads, [0.5, 0.5], 8);
  assert.equal(shards[1]!.values[0], Math.fround(Math.fround(0.5 * grads[0]![5]!) + 0.5 * grads[1]![5]!));
});

Deno.test("a neighbour's connection that ends fails the wait at once, naming it", async () => {
  await using ring = await nodes(3, 4);
  const grads = random(12, 1);
  const waiting = ring.nodes[2]!.reduceScatter({
    version: 1,
    ring: ring.ring,
    rank: 2,
    grads,
    weight: 1 / 3,
  });
  // w1 (rank 2's previous neighbour) sends its first chunk, then leaves.
  const sent = ring.nodes[1]!.reduceScatter({
    version: 1,
    ring: ring.ring,
    rank: 1,
    grads: grads.slice(),
    weight: 1 / 3,
  });
  sent.catch(() => {});
  const failed = assert.rejects(
    waiting,
    (e) => e instanceof RingAbortedError && /the ring connection from worker w1 ended/.test(e.message),
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  await ring.nodes[1]!.close();
  await failed;
});

/**
 * Counts the buffers allocated with `new ArrayBuffer(n)`, `new Uint8Array(n)` and `new Float32Array(n)`
 * (the constructors of a new buffer; views onto a buffer are not counted) until `stop` is called.
 */
function countAllocations(): { sizes: number[]; stop(): void } {
  const sizes: number[] = [];
  const globals = globalThis as unknown as Record<string, unknown>;
  const originals = { ArrayBuffer, Uint8Array, Float32Array };
  for (const [name, ctor] of Object.entries(originals)) {
    const proxy: unknown = new Proxy(ctor, {
      construct(target, args, newTarget) {
        if (typeof args[0] === "number") {
          sizes.push(args[0] * ((target as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1));
        }
        return Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
      },
    });
    globals[name] = proxy;
  }
  return { sizes, stop: () => Object.assign(globals, originals) };
}

Deno.test("a rank allocates no buffer per step or chunk: it reduces in its gradient and reuses two chunks per neighbour", async () => {
  // Chunks of the size workers use: a whole chunk is sent from where it lies, a smaller frame's body
  // (the part) is copied into its head.
  const n = 4, chunkFloats = RING_CHUNK_FLOATS;
  // Each shard: three whole chunks and a part of one (a frame smaller than a chunk).
  const length = n * (3 * chunkFloats + 700);
  await using ring = await nodes(n, chunkFloats);
  const grads = Array.from({ length: n }, (_, k) => random(length, 11 + k));
  const step = (version: number) => reduceAll(ring, grads, grads.map(() => 1 / n), version, true);
  // The first steps dial the neighbours and make the buffers.
  await step(1);
  await step(2);
  const steps = 10;
  const counted = countAllocations();
  try {
    for (let version = 3; version < 3 + steps; version++) await step(version);
  } finally {
    counted.stop();
  }
  const chunkBytes = 4 * chunkFloats;
  const large = counted.sizes.filter((bytes) => bytes >= chunkBytes / 4);
  assert.equal(
    large.length,
    0,
    `${large.length} buffers of a chunk or part (${
      large.reduce((a, b) => a + b, 0)
    } bytes) allocated in ${steps} steps`,
  );
  const perStep = counted.sizes.reduce((a, b) => a + b, 0) / steps / n;
  assert.ok(perStep < chunkBytes, `${perStep} bytes allocated per step and rank: more than a chunk's`);
});

Deno.test("shards far larger than the socket buffers do not stall the ring", async () => {
  // 4 ranks, 300,000 values a shard (1.2 MB, several times a Unix socket's buffer): with every rank
  // sending its first shard whole before taking anything, all four waited on each other for good.
  const n = 4, length = n * 300_000;
  await using ring = await nodes(n, RING_CHUNK_FLOATS);
  const grads = Array.from({ length: n }, (_, k) => random(length, 21 + k));
  const star = new Float32Array(length);
  weightedSum(star, grads, grads.map(() => 1 / n));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the reduce-scatter stalled for 30 s")), 30_000);
  });
  try {
    const shards = await Promise.race([reduceAll(ring, grads, grads.map(() => 1 / n)), stalled]);
    const diff = maxDiffToStar(shards, star);
    assert.ok(diff <= 1e-6, `max difference to the star ${diff}`);
  } finally {
    clearTimeout(timer);
  }
});
