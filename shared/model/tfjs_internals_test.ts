import assert from "node:assert/strict";
import { initBackend } from "./backend.ts";
import { tf } from "./tf.ts";
import {
  disposeAbandonedTape,
  keepTapeClosuresYoung,
  tapeState,
  TFJS_CORE_VERSION,
} from "./tfjs_internals.ts";

await initBackend("auto");

Deno.test("the installed tfjs-core is the release whose internals tfjs_internals.ts names", async () => {
  // An upgrade of tfjs must fail here first: check the engine state tfjs_internals.ts reads, then change
  // TFJS_CORE_VERSION.
  assert.equal(tf.version_core, TFJS_CORE_VERSION);
  for (const file of ["./tf.ts", "./tfjs_internals.ts"]) {
    const source = await Deno.readTextFile(new URL(file, import.meta.url));
    const versions = new Set([...source.matchAll(/npm:@tensorflow\/tfjs[a-z-]*@([^/"]+)/g)].map((m) => m[1]));
    assert.ok([...versions].every((v) => v === TFJS_CORE_VERSION), `${file} imports tfjs ${[...versions]}`);
  }
  const state = tapeState();
  assert.ok(state !== null, "tf.engine().state has activeTape and gradientDepth");
  assert.equal(state.gradientDepth, 0);
});

Deno.test("disposeAbandonedTape frees the tensors a gradient pass stopped half-way left on the tape", () => {
  const x = tf.tensor1d([1, 2, 3]);
  const before = tf.memory().numTensors;
  assert.throws(
    () =>
      tf.grad((v: tf.Tensor) => {
        const y = tf.square(tf.mul(v, 2));
        if (y.size > 0) throw new Error("stopped half-way");
        return y;
      })(x),
    /stopped half-way/,
  );
  assert.ok(tapeState()!.activeTape !== null, "the stopped pass left its tape");
  disposeAbandonedTape();
  assert.equal(tapeState()!.activeTape, null);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("keepTapeClosuresYoung's tape and customGrad give tfjs-core's gradients exactly", () => {
  // Unused outputs of a multi-output op (their dys are filled with zeros), a customGrad with two inputs
  // and its own gradient (made on each call, so by the engine's customGrad of the moment), and an op
  // whose gradient reads saved tensors.
  const loss = (x: tf.Tensor, w: tf.Tensor) => {
    const scaled = tf.customGrad((a, b, save) => {
      (save as (ts: tf.Tensor[]) => void)([a as tf.Tensor, b as tf.Tensor]);
      return {
        value: tf.mul(a as tf.Tensor, b as tf.Tensor),
        gradFunc: (
          dy: tf.Tensor,
          saved: tf.Tensor[],
        ) => [tf.mul(dy, tf.mul(saved[1]!, 3)), tf.mul(dy, saved[0]!)],
      };
    });
    const [, second] = tf.unstack(x);
    return tf.sum(tf.exp(scaled(tf.mul(second!, 0.5), w) as tf.Tensor));
  };
  const x = tf.tensor2d([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9]]);
  const w = tf.tensor1d([1.5, -2, 0.25]);
  const grads = () => tf.grads(loss)([x, w]).map((g) => Array.from(g.dataSync()));
  const engine = Object.getPrototypeOf(tf.engine());
  const stock = { addTapeNode: engine.addTapeNode, customGrad: engine.customGrad };
  const expected = grads();
  keepTapeClosuresYoung();
  assert.notEqual(engine.addTapeNode, stock.addTapeNode);
  assert.notEqual(engine.customGrad, stock.customGrad);
  const before = tf.memory().numTensors;
  assert.deepEqual(grads(), expected);
  // Leaves nothing behind but its two results, and installs once.
  assert.equal(tf.memory().numTensors, before + 2);
  const installed = engine.addTapeNode;
  keepTapeClosuresYoung();
  assert.equal(engine.addTapeNode, installed);
});
