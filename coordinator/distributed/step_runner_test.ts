/**
 * The roster and the step runner without processes or servers: members whose links compute in this
 * process with the same Engine a worker runs (or fail on purpose), driven by hand. The fault logic
 * (a lost member, a missed deadline, a rejected reply, slices that must run together) is checked
 * through the pool events and the results.
 */
import assert from "node:assert/strict";
import { layers } from "../../mod.ts";
import { Engine, resolveMetric, type SliceResult } from "../../shared/model/mod.ts";
import {
  decodeIndices,
  encodeTrainReply,
  type ReadyRequest,
  type WorkRequest,
} from "../../shared/io/protocol/mod.ts";
import { type Body, encodeMessage, joinBody } from "../../shared/io/nats/codec.ts";
import { type Dataset, gatherRows, toDataset } from "../data.ts";
import { twoClassModel, twoClassProblem } from "../../tests/support/two_class.ts";
import { type PoolEvent, PoolEvents } from "./events.ts";
import {
  LinkLostError,
  LinkTimeoutError,
  type Reply,
  type RequestOptions,
  type WorkerLink,
} from "./links.ts";
import { Roster } from "./roster.ts";
import { nextSlice, type StepHost, StepRunner } from "./step_runner.ts";

const DATA = twoClassProblem(64);

/** How one in-memory link behaves on its next train requests. */
type Behaviour = "ok" | "lost" | "timeout" | "wrong-step";

/** A worker in this process: computes train requests with its own Engine over the same network. */
class MemoryLink implements WorkerLink {
  readonly kind = "direct" as const;
  readonly address: string;
  closed: string | undefined;
  requests = 0;

  constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly data: Dataset,
    readonly plan: Behaviour[] = [],
  ) {
    this.address = `memory:${name}`;
  }

  request(header: WorkRequest, body: unknown, opts: RequestOptions): Promise<Reply> {
    this.requests++;
    if (header.kind !== "train") return Promise.reject(new Error(`unexpected ${header.kind} request`));
    const behaviour = this.plan.shift() ?? "ok";
    if (behaviour === "lost") return Promise.reject(new LinkLostError("its data connection ended: test"));
    if (behaviour === "timeout") {
      return Promise.reject(
        new LinkTimeoutError(`no reply within its step deadline of ${opts.timeoutMs / 1000} s`),
      );
    }
    const indices = decodeIndices(joinBody(body as Body));
    const net = this.engine.network;
    const r = this.engine.trainSlice(
      net.params,
      net.state,
      gatherRows(this.data, indices),
      header.step,
      header.rowOffset,
    );
    const { header: reply, body: replyBody } = encodeTrainReply({
      kind: "train",
      job: header.job,
      worker: this.name,
      step: behaviour === "wrong-step" ? header.step + 1 : header.step,
      computeMs: 1,
      encoding: header.encoding,
    }, r);
    // Through the wire format, as a real reply.
    const bytes = encodeMessage(reply, replyBody);
    return Promise.resolve({
      header: reply,
      body: bytes.subarray(bytes.length - joinBody(replyBody).length),
    });
  }

  close(reason: string): void {
    this.closed = reason;
  }
}

function setup(plans: Behaviour[][], bn = false) {
  const model = twoClassModel(bn ? [new layers.BatchNormalization()] : []);
  const loss = "sparse_categorical_crossentropy" as const;
  const engine = new Engine(model.network, { loss, metrics: [resolveMetric("accuracy", loss, 2)], seed: 7 });
  const events: PoolEvent[] = [];
  const bus = new PoolEvents([(e) => events.push(e)]);
  const roster = new Roster({
    job: "j",
    maxWorkers: plans.length,
    layouts: { params: engine.network.paramLayout, state: engine.network.stateLayout },
    events: bus,
  });
  const data = toDataset(DATA.x, DATA.y);
  const links = plans.map((plan, k) => new MemoryLink(`w${k}`, engine, data, plan));
  const manifest = (l: typeof engine.network.paramLayout) => l.map((e) => ({ path: e.path, shape: e.shape }));
  for (const link of links) {
    assert.equal(roster.join({ job: "j", worker: link.name, pid: 1, host: "h" }, false), undefined);
    const ready: ReadyRequest = {
      job: "j",
      worker: link.name,
      backend: "cpu",
      device: "cpu",
      params: manifest(engine.network.paramLayout),
      state: manifest(engine.network.stateLayout),
      link: "direct",
      warmupMs: 1,
      warmupRows: 32,
      rttMs: 1,
    };
    const joiner = roster.ready(ready, link);
    assert.ok(!(joiner instanceof Error), String(joiner));
    joiner.prepared = true;
    roster.admit(link.name, -1);
  }
  const exchange: { begun: string[][]; aborted: string[] } = { begun: [], aborted: [] };
  let version = 0;
  const host: StepHost = {
    boundary: () => Promise.resolve(),
    recover: () => Promise.resolve(),
    publishWeights: () => Promise.resolve(++version),
    beginExchange: (_v, workers) => {
      exchange.begun.push([...workers]);
      return false;
    },
    abortExchange: (_v, reason) => void exchange.aborted.push(reason),
    ringFor: () => false,
    abortRing: () => {},
    ringUnreachable: () => {},
    probe: () => Promise.resolve(true),
  };
  const runner = new StepRunner(roster, engine, host, bus, {
    job: "j",
    gradEncoding: "f32",
    stepTimeoutFactor: 5,
    stepTimeoutFloorMs: 3000,
    requestTimeoutMs: 120_000,
  });
  const step = (n: number) =>
    runner.trainStep("train", {
      step: n,
      indices: Int32Array.from({ length: 32 }, (_, i) => i),
      params: engine.network.params,
      state: engine.network.state,
    });
  return { engine, roster, runner, links, events, exchange, step };
}

/** The gradient of the whole batch in one slice, for comparisons. */
function wholeBatch(engine: Engine): SliceResult {
  const net = engine.network;
  const batch = gatherRows(toDataset(DATA.x, DATA.y), Int32Array.from({ length: 32 }, (_, i) => i));
  return engine.trainSlice(net.params, net.state, batch, 0, 0);
}

function weightedGradient(results: SliceResult[]): Float32Array {
  const count = results.reduce((n, r) => n + r.count, 0);
  const out = new Float32Array(results[0]!.grads.length);
  for (const r of results) r.grads.forEach((g, i) => out[i] = out[i]! + (r.count / count) * g);
  return out;
}

Deno.test("the roster refuses taken names, other jobs and a full job, and a model that differs", () => {
  const { roster, events, engine } = setup([["ok"]]);
  const other = new Roster({
    job: "j",
    maxWorkers: 2,
    layouts: { params: engine.network.paramLayout, state: engine.network.stateLayout },
    events: new PoolEvents([(e) => events.push(e)]),
  });
  assert.equal(other.join({ job: "j", worker: "m", pid: 1, host: "h" }, false), undefined);
  const wrong = other.ready({
    job: "j",
    worker: "m",
    backend: "cpu",
    device: "cpu",
    params: [{ path: "dense/kernel", shape: [3, 3] }],
    state: [],
    link: "nats",
    warmupMs: 1,
    warmupRows: 32,
    rttMs: 1,
  }, undefined);
  assert.ok(
    wrong instanceof Error && /model differs from the coordinator's at params weight 0/.test(wrong.message),
  );
  assert.match(String(other.join({ job: "j", worker: "m", pid: 1, host: "h" }, false)), /model differs/);
  assert.ok(events.some((e) => e.type === "refused" && e.worker === "m"));
  const join = (worker: string, job = "j") => roster.join({ job, worker, pid: 1, host: "h" }, false);
  assert.match(String(join("w0")), /the name w0 is taken/);
  assert.match(String(join("x", "other")), /asked for job other/);
  assert.match(String(join("x")), /has its 1 workers \(maxWorkers\)/);
  assert.match(String(roster.join({ job: "j", worker: "x", pid: 1, host: "h" }, true)), /is over/);
  assert.equal(roster.dataRefusal("w0"), undefined);
  assert.match(String(roster.dataRefusal("stranger")), /has not joined job j over NATS/);
});

Deno.test("slices come back in slice order and add up to the whole batch's gradient", async () => {
  const { engine, step, links } = setup([[], [], []]);
  const results = await step(0);
  assert.deepEqual(results.map((r) => r.count), [10, 11, 11]);
  assert.deepEqual(links.map((l) => l.requests), [1, 1, 1]);
  const whole = wholeBatch(engine);
  const diff = Math.max(...weightedGradient(results).map((g, i) => Math.abs(g - whole.grads[i]!)));
  assert.ok(diff <= 1e-6, `the slices' gradient differs from the whole batch's by ${diff}`);
});

Deno.test("a lost member and one that missed its deadline are dropped; their slices run on the others", async () => {
  const { engine, step, links, events, roster } = setup([["lost"], [], ["timeout"]]);
  const results = await step(0);
  assert.deepEqual(results.map((r) => r.count), [10, 11, 11]);
  assert.deepEqual(roster.live.map((m) => m.name), ["w1"]);
  const dropped = events.flatMap((e) =>
    e.type === "dropped" ? [`${e.worker}: ${e.reason} (deadline ${e.deadlineSeconds})`] : []
  );
  assert.deepEqual(dropped, [
    "w0: its data connection ended: test (deadline undefined)",
    "w2: no reply within its step deadline of 3 s (deadline 3)",
  ]);
  assert.match(String(links[0]!.closed), /data connection ended/);
  const whole = wholeBatch(engine);
  const diff = Math.max(...weightedGradient(results).map((g, i) => Math.abs(g - whole.grads[i]!)));
  assert.ok(diff <= 1e-6, `recomputed slices differ by ${diff}`);
  await assert.rejects(step(0), /step 0 already ran/);
});

Deno.test("a rejected reply is recomputed on the next member; a reply for another step never counts", async () => {
  const { step, events, links } = setup([["wrong-step"], []]);
  const results = await step(4);
  assert.deepEqual(results.map((r) => r.count), [16, 16]);
  const rejected = events.find((e) => e.type === "reply-rejected");
  assert.ok(rejected?.type === "reply-rejected" && rejected.recompute, JSON.stringify(events));
  assert.match(rejected.reason, /it is for step 5, not the current step 4/);
  assert.deepEqual(links.map((l) => l.requests), [1, 2]);
});

Deno.test("slices that exchange partial results run again together when one of them is lost", async () => {
  const { step, exchange, events, links } = setup([[], ["lost"]], true);
  const results = await step(0);
  // The attempt with both slices was aborted; the step ran again, whole, on the survivor.
  assert.deepEqual(exchange.begun, [["w0", "w1"]]);
  assert.match(exchange.aborted[0]!, /worker w1 was lost/);
  assert.deepEqual(results.map((r) => r.count), [32]);
  assert.deepEqual(links.map((l) => l.requests), [2, 1]);
  assert.ok(events.some((e) => e.type === "attempt-retried"), JSON.stringify(events));
});

Deno.test("a first deadline comes from the worker's setup measurements, later ones from its rounds", async () => {
  const { runner, roster, step } = setup([[]]);
  const member = roster.live[0]!;
  // 1 ms per 32 rows forward, 4x for a training step, the model's bytes at 25 MB/s, factor 5: the floor.
  assert.equal(runner.deadlineMs(member, "train", 32), 3000);
  member.warmup = { ms: 400, rows: 32 };
  assert.ok(runner.deadlineMs(member, "train", 32) > 8000);
  await step(0);
  assert.equal(runner.deadlineMs(member, "train", 32), 3000, "measured rounds replace the estimate");
  assert.equal(runner.deadlineMs(member, "data", 32), 120_000);
});

Deno.test("each slice reads ahead the rows its member takes of the next batch when the members stay", () => {
  const next = Int32Array.from([9, 8, 7, 6, 5]);
  assert.deepEqual([0, 1, 2].map((k) => [...nextSlice(next, k, 3)]), [[9], [8, 7], [6, 5]]);
  assert.equal(nextSlice(null, 0, 2).length, 0);
  assert.equal(nextSlice(undefined, 1, 2).length, 0);
});
