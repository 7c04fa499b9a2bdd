import assert from "node:assert/strict";
import { chooseAllreduce, RING_MIN_MODEL_BYTES, type RingCandidate } from "./allreduce.ts";

const linked = (n: number, sharesMemory = false): RingCandidate[] =>
  Array.from(
    { length: n },
    (_, k) => ({ name: `w${k}`, ringAddresses: [`tcp://127.0.0.1:${7000 + k}`], sharesMemory }),
  );
const BIG = 8 * RING_MIN_MODEL_BYTES;

Deno.test("star stays star; ring is ring from 2 workers on", () => {
  assert.equal(chooseAllreduce("star", linked(16), BIG).use, "star");
  assert.equal(chooseAllreduce("ring", linked(1), BIG).use, "star");
  assert.equal(chooseAllreduce("ring", linked(2), 100).use, "ring");
});

Deno.test("auto picks the ring for 3 or more workers, a model of 1 MiB or more, and bytes over links", () => {
  assert.equal(chooseAllreduce("auto", linked(3), BIG).use, "ring");
  assert.match(chooseAllreduce("auto", linked(2), BIG).reason, /2 workers, a ring pays from 3/);
  assert.match(chooseAllreduce("auto", linked(8), 1000).reason, /1000 bytes are below 1048576/);
  assert.match(chooseAllreduce("auto", linked(8, true), BIG).reason, /every worker shares memory/);
});

Deno.test("a worker without a ring address keeps the step on the star, and is named", () => {
  const workers = linked(4);
  delete workers[2]!.ringAddresses;
  const choice = chooseAllreduce("ring", workers, BIG);
  assert.equal(choice.use, "star");
  assert.match(choice.reason, /worker\(s\) w2 cannot take part in a ring/);
});

Deno.test("over a TLS data plane only TLS ring addresses count, and the reason names the flags", () => {
  const tls: RingCandidate[] = linked(3).map((w) => ({
    ...w,
    ringAddresses: w.ringAddresses!.map((a) => a.replace("tcp:", "tls:")),
  }));
  assert.equal(chooseAllreduce("ring", tls, BIG, true).use, "ring");
  assert.equal(chooseAllreduce("auto", tls, BIG, true).use, "ring");
  const plain: RingCandidate[] = tls.map((w, k) =>
    k === 1 ? { ...w, ringAddresses: ["tcp://127.0.0.1:7001"] } : w
  );
  delete plain[2]!.ringAddresses;
  for (const mode of ["auto", "ring"] as const) {
    const choice = chooseAllreduce(mode, plain, BIG, true);
    assert.equal(choice.use, "star");
    assert.match(
      choice.reason,
      /^worker\(s\) w1, w2 cannot take part in a ring over the TLS data plane .*--ring-tls-cert FILE --ring-tls-key FILE/,
    );
  }
});

Deno.test("a worker whose ring address another could not reach keeps the step on the star, with the fix", () => {
  const workers = linked(4);
  workers[1]!.unreachable = "worker w1's ring address tcp://127.0.0.1:7001 cannot be reached from worker w0";
  for (const mode of ["auto", "ring"] as const) {
    const choice = chooseAllreduce(mode, workers, BIG);
    assert.equal(choice.use, "star");
    assert.match(
      choice.reason,
      /^worker w1's ring address tcp:\/\/127\.0\.0\.1:7001 cannot be reached from worker w0: open the workers' ring port/,
    );
  }
  assert.equal(chooseAllreduce("ring", workers.filter((w) => w.name !== "w1"), BIG).use, "ring");
});
