import assert from "node:assert/strict";
import { Input, layers, Sequential } from "../../../mod.ts";
import { InputLayer } from "./input_layer.ts";

Deno.test("Input is a symbolic tensor with the per-sample shape, made by an InputLayer", () => {
  const x = new Input({ shape: [28, 28], name: "pixels" });
  assert.deepEqual(x.shape, [28, 28]);
  const layer = x.node.layer as InputLayer;
  assert.ok(layer instanceof InputLayer);
  assert.equal(layer.name, "pixels");
  assert.deepEqual(layer.getConfig(), {
    batch_shape: [null, 28, 28],
    dtype: "float32",
    sparse: false,
    ragged: false,
    name: "pixels",
  });
  assert.equal(layer.countParams(), 0);
});

Deno.test("Input rejects dimensions that are not positive integers, naming the shape", () => {
  assert.throws(() => new Input({ shape: [0, 3] }), /positive integer: received shape \[0,3\]/);
  assert.throws(() => new InputLayer({ shape: [2.5] }), /received shape \[2.5\]/);
});

Deno.test("A Sequential model may start with an InputLayer instead of inputShape", () => {
  const model = new Sequential([new InputLayer({ shape: [3] }), new layers.Dense(2)], { seed: 1 });
  assert.deepEqual(model.network.inputShapes, [[3]]);
  assert.deepEqual(model.network.outputShapes, [[2]]);
  assert.equal(model.countParams(), 8);
  assert.deepEqual(model.layers.map((l) => l.className), ["Dense"]);
});
