import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { version_wasm } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { requireWasmBlas } from "./test_util.ts";
import { heapView, TFJS_WASM_VERSION, wasmHeapBackend, wasmHeapOf } from "./wasm_internals.ts";

Deno.test("the installed tfjs-backend-wasm is the release whose internals wasm_internals.ts names", async () => {
  // An upgrade of tfjs must fail here first: check the heap and tensor table wasm_internals.ts reads,
  // then change TFJS_WASM_VERSION.
  assert.equal(version_wasm, TFJS_WASM_VERSION);
  assert.equal(tf.version_core, TFJS_WASM_VERSION);
  for (const file of ["./wasm_internals.ts", "./wasm_blas.ts"]) {
    const source = await Deno.readTextFile(new URL(file, import.meta.url));
    const versions = new Set([...source.matchAll(/npm:@tensorflow\/tfjs[a-z-]*@([^/"]+)/g)].map((m) => m[1]));
    assert.deepEqual([...versions], [TFJS_WASM_VERSION], file);
  }
});

Deno.test("a wasm backend instance exposes the heap and tensor table the BLAS kernels read", async () => {
  await requireWasmBlas();
  await tf.setBackend("wasm");
  const backend = wasmHeapBackend(tf.backend());
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  try {
    assert.deepEqual([...heapView(backend, x)], [1, 2, 3, 4]);
  } finally {
    x.dispose();
  }
  await tf.setBackend("cpu");
  assert.equal(wasmHeapOf(tf.backend()), undefined);
  assert.throws(
    () => wasmHeapBackend(tf.backend()),
    /has no wasm.HEAPF32, dataIdMap and makeOutput: .*tfjs-backend-wasm@4\.22\.0/,
  );
});
