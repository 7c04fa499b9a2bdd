import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { selectBackend } from "./select.ts";

Deno.test("selectBackend auto skips the missing native backends and picks wasm-blas", async () => {
  const selection = await selectBackend("auto");
  assert.equal(selection.name, "wasm-blas");
  assert.equal(tf.getBackend(), "wasm-blas");
  // One short clause per skipped backend, not the module loader's whole message.
  assert.equal(
    selection.reason,
    "auto picked wasm-blas; skipped tensorflow-gpu: @tensorflow/tfjs-node-gpu is not installed; " +
      "tensorflow: @tensorflow/tfjs-node is not installed",
  );
});

Deno.test("selectBackend runs wasm with a notice when OpenBLAS is missing", async () => {
  // An earlier registration would be reused: remove it so that the library lookup runs again.
  if (tf.findBackendFactory("wasm-blas") !== null) tf.removeBackend("wasm-blas");
  const selection = await selectBackend("wasm-blas", {
    wasmBlas: { blas: { paths: ["/nonexistent/libopenblas.so.0"] } },
  });
  assert.equal(selection.name, "wasm");
  assert.equal(tf.getBackend(), "wasm");
  assert.match(selection.reason, /nonexistent\/libopenblas/);
});

Deno.test("selectBackend activates cpu and wasm by name", async () => {
  for (const name of ["cpu", "wasm"] as const) {
    const selection = await selectBackend(name);
    assert.equal(selection.name, name);
    assert.equal(tf.getBackend(), name);
  }
});

Deno.test("selectBackend rejects tensorflow when tfjs-node is not installed, saying what to install", async () => {
  await assert.rejects(selectBackend("tensorflow-gpu"), /CUDA 11\.2 and cuDNN 8\.1/);
  await assert.rejects(selectBackend("tensorflow"), /@tensorflow\/tfjs-node@4\.22\.0/);
});

Deno.test("selectBackend rejects an unknown name with the accepted list", async () => {
  await assert.rejects(
    selectBackend("gpu" as never),
    /auto, tensorflow-gpu, tensorflow, wasm-blas, wasm, cpu/,
  );
});
