import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { unzipSync } from "npm:fflate@0.8.3";
import { kerasLayerVarCount, kerasVarGroups, toSnakeCase } from "./naming.ts";

const FIXTURES = fileURLToPath(new URL("../../../tests/fixtures/keras/", import.meta.url));

async function fixtureConfig(name: string): Promise<unknown> {
  const entries = unzipSync(await Deno.readFile(`${FIXTURES}${name}.keras`));
  return JSON.parse(new TextDecoder().decode(entries["config.json"]));
}

Deno.test("toSnakeCase follows Keras's rule", () => {
  const cases: [string, string][] = [
    ["Dense", "dense"],
    ["BatchNormalization", "batch_normalization"],
    ["Conv2D", "conv2d"],
    ["MaxPooling2D", "max_pooling2d"],
    ["InputLayer", "input_layer"],
    ["GlobalAveragePooling1D", "global_average_pooling1d"],
    ["Conv2DTranspose", "conv2d_transpose"],
    ["PReLU", "p_re_lu"],
    ["ReLU", "re_lu"],
    ["LSTM", "lstm"],
  ];
  for (const [className, snake] of cases) assert.equal(toSnakeCase(className), snake, className);
});

Deno.test("kerasVarGroups numbers groups by class in Sequential order, without the InputLayer", async () => {
  const specs = kerasVarGroups(await fixtureConfig("fashion_mlp"));
  assert.deepEqual(specs.map((s) => [s.layerName, s.group, s.nVars]), [
    ["dense", "layers/dense", 2],
    ["batch_normalization", "layers/batch_normalization", 4],
    ["dropout", "layers/dropout", 0],
    ["dense_1", "layers/dense_1", 2],
    ["batch_normalization_1", "layers/batch_normalization_1", 4],
    ["dropout_1", "layers/dropout_1", 0],
    ["dense_2", "layers/dense_2", 2],
    ["dropout_2", "layers/dropout_2", 0],
    ["dense_3", "layers/dense_3", 2],
  ]);
});

Deno.test("kerasVarGroups uses positions, not layer names, and keeps Functional InputLayers", async () => {
  const specs = kerasVarGroups(await fixtureConfig("multi_input"));
  assert.deepEqual(specs.map((s) => [s.layerName, s.className, s.group]), [
    ["numeric_features", "InputLayer", "layers/input_layer"],
    ["text_embedding", "InputLayer", "layers/input_layer_1"],
    ["dense_4", "Dense", "layers/dense"],
    ["dense_6", "Dense", "layers/dense_1"],
    ["dense_5", "Dense", "layers/dense_2"],
    ["dense_7", "Dense", "layers/dense_3"],
    ["concatenate", "Concatenate", "layers/concatenate"],
    ["dense_8", "Dense", "layers/dense_4"],
    ["dropout_3", "Dropout", "layers/dropout"],
    ["price", "Dense", "layers/dense_5"],
  ]);
  const flat = kerasVarGroups(await fixtureConfig("regularized_binary"));
  assert.deepEqual(flat.map((s) => s.group), [
    "layers/flatten",
    "layers/dense",
    "layers/dense_1",
    "layers/dense_2",
  ]);
});

Deno.test("kerasVarGroups descends into nested models", () => {
  const layer = (class_name: string, name: string, config: Record<string, unknown> = {}) => ({
    class_name,
    config: { name, ...config },
  });
  const inner = {
    class_name: "Sequential",
    config: { name: "block", layers: [layer("InputLayer", "in"), layer("Dense", "d0", { use_bias: false })] },
  };
  const specs = kerasVarGroups({
    class_name: "Functional",
    config: {
      name: "outer",
      layers: [layer("InputLayer", "x"), inner, layer("Conv2D", "c"), layer("Dense", "d1")],
    },
  });
  assert.deepEqual(specs.map((s) => [s.layerName, s.group, s.nVars]), [
    ["x", "layers/input_layer", 0],
    ["block", "layers/sequential", 0],
    ["d0", "layers/sequential/layers/dense", 1],
    ["c", "layers/conv2d", 2],
    ["d1", "layers/dense", 2],
  ]);
});

Deno.test("kerasLayerVarCount follows layer options and admits unknown classes", () => {
  assert.equal(kerasLayerVarCount("BatchNormalization", { center: false }), 3);
  assert.equal(kerasLayerVarCount("BatchNormalization", { center: false, scale: false }), 2);
  assert.equal(kerasLayerVarCount("Dense", { use_bias: false }), 1);
  assert.equal(kerasLayerVarCount("LayerNormalization", {}), 2);
  assert.equal(kerasLayerVarCount("Embedding", {}), 1);
  assert.equal(kerasLayerVarCount("MyCustomLayer", {}), null);
});

Deno.test("kerasVarGroups rejects configs that are not models", () => {
  assert.throws(() => kerasVarGroups({ class_name: "Dense", config: {} }), /current class_name is "Dense"/);
  assert.throws(() => kerasVarGroups(null), TypeError);
  assert.throws(
    () => kerasVarGroups({ class_name: "Sequential", config: { layers: [{ config: {} }] } }),
    /config\.layers\[0\]\.class_name must be a string/,
  );
});
