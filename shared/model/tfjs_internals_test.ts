import assert from "node:assert/strict";
import { initBackend } from "./backend.ts";
import { tf } from "./tf.ts";
import { disposeAbandonedTape, tapeState, TFJS_CORE_VERSION } from "./tfjs_internals.ts";

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
