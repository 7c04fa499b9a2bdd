import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import h5wasm, { type Group } from "npm:h5wasm@0.10.3";
import { KerasFileError } from "./errors.ts";
import { kerasVarGroups } from "./naming.ts";
import { decodeKerasArchive } from "./archive.ts";
import {
  decodeWeightsH5,
  encodeWeightsH5,
  type KerasWeights,
  readWeightsH5,
  shapeSize,
  writeWeightsH5,
} from "./weights_h5.ts";

const FIXTURES = fileURLToPath(new URL("../../../tests/fixtures/keras/", import.meta.url));
const NAMES = ["fashion_mlp", "multi_input", "regularized_binary"] as const;

interface Expected {
  params: number;
  optimizer_iterations: number;
}

async function expected(name: string): Promise<Expected> {
  return JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}.expected.json`));
}

/** Every object of an HDF5 file as `path → description` (kind, attributes, dtype, shape), via h5wasm. */
async function h5Outline(bytes: Uint8Array): Promise<Map<string, string>> {
  const module = await h5wasm.ready;
  const fs = module.FS as unknown as { writeFile(p: string, d: Uint8Array): void; unlink(p: string): void };
  const memPath = `/outline-${crypto.randomUUID()}.h5`;
  fs.writeFile(memPath, bytes);
  const outline = new Map<string, string>();
  const file = new h5wasm.File(memPath, "r");
  try {
    const visit = (group: Group) => {
      for (const key of group.keys()) {
        const child = group.get(key);
        const path = `${group.path === "/" ? "" : group.path}/${key}`;
        const attrs = Object.entries((child as Group).attrs).map(([k, a]) => `${k}=${a.value}`).join(",");
        if (child instanceof h5wasm.Group) {
          outline.set(path, `group {${attrs}}`);
          visit(child);
        } else if (child instanceof h5wasm.Dataset) {
          const meta = child.metadata;
          outline.set(path, `dataset {${attrs}} ${child.dtype} [${child.shape}] chunks=${meta.chunks}`);
        }
      }
    };
    visit(file);
    outline.set("/", `group {${Object.keys(file.attrs).join(",")}}`);
  } finally {
    file.close();
    fs.unlink(memPath);
  }
  return outline;
}

function assertWeightsEqual(actual: KerasWeights, expected: KerasWeights): void {
  assert.deepEqual(actual.model, expected.model);
  assert.deepEqual([...actual.layers.keys()].sort(), [...expected.layers.keys()].sort());
  for (const [path, group] of expected.layers) assert.deepEqual(actual.layers.get(path), group, path);
  assert.deepEqual(actual.optimizer, expected.optimizer);
}

function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "keras-h5-" });
}

for (const name of NAMES) {
  Deno.test(`readWeightsH5 reads ${name}: groups match its config, parameter and step counts match`, async () => {
    const weights = await readWeightsH5(`${FIXTURES}${name}.weights.h5`);
    const exp = await expected(name);
    const { config } = await decodeKerasArchive(await Deno.readFile(`${FIXTURES}${name}.keras`));
    const specs = kerasVarGroups(config);
    assert.deepEqual([...weights.layers.keys()].sort(), specs.map((s) => s.group).sort());
    for (const spec of specs) {
      const group = weights.layers.get(spec.group)!;
      assert.equal(group.name, spec.layerName);
      assert.equal(group.vars.length, spec.nVars, spec.group);
    }
    const params = [...weights.layers.values()].flatMap((g) => g.vars).reduce(
      (n, v) => n + shapeSize(v.shape),
      0,
    );
    assert.equal(params, exp.params);
    assert.equal(weights.model.vars.length, 0);
    assert.equal(weights.model.name, (config as { config: { name: string } }).config.name);

    const opt = weights.optimizer!;
    const [iterations, learningRate] = opt.vars;
    assert.equal(iterations!.dtype, "int64");
    assert.deepEqual(iterations!.shape, []);
    assert.equal(iterations!.data[0], BigInt(exp.optimizer_iterations));
    assert.equal(learningRate!.dtype, "float32");
    assert.deepEqual(learningRate!.shape, []);
    for (const v of [...weights.layers.values()].flatMap((g) => g.vars)) {
      assert.equal(v.dtype, "float32");
      assert.ok(v.data instanceof Float32Array);
    }
  });

  Deno.test(`writeWeightsH5 reproduces ${name}: same HDF5 objects, attributes, dtypes and values`, async () => {
    const original = await Deno.readFile(`${FIXTURES}${name}.weights.h5`);
    const weights = await decodeWeightsH5(original);
    const dir = await tempDir();
    try {
      const out = `${dir}/${name}.weights.h5`;
      await writeWeightsH5(out, weights);
      const written = await Deno.readFile(out);
      assert.deepEqual(await h5Outline(written), await h5Outline(original));
      assert.deepEqual(
        written.subarray(0, 9),
        original.subarray(0, 9),
        "HDF5 signature and superblock version 0",
      );
      assertWeightsEqual(await readWeightsH5(out), weights);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("Adam slots in fashion_mlp interleave m and v per trainable variable, in layer order", async () => {
  const weights = await readWeightsH5(`${FIXTURES}fashion_mlp.weights.h5`);
  const layer = (path: string) => weights.layers.get(path)!.vars;
  const trainable = [
    ...layer("layers/dense"),
    ...layer("layers/batch_normalization").slice(0, 2),
    ...layer("layers/dense_1"),
    ...layer("layers/batch_normalization_1").slice(0, 2),
    ...layer("layers/dense_2"),
    ...layer("layers/dense_3"),
  ];
  const slots = weights.optimizer!.vars.slice(2);
  assert.equal(weights.optimizer!.name, "adam");
  assert.equal(slots.length, 2 * trainable.length);
  trainable.forEach((variable, i) => {
    assert.deepEqual(slots[2 * i]!.shape, variable.shape);
    assert.deepEqual(slots[2 * i + 1]!.shape, variable.shape);
    assert.ok((slots[2 * i + 1]!.data as Float32Array).every((v) => v >= 0), `v${i} is a second moment`);
  });
  assert.ok(
    (slots[0]!.data as Float32Array).some((m) => m < 0),
    "m0 is a first moment (has negative entries)",
  );
});

Deno.test("encodeWeightsH5 round-trips other dtypes, scalars, nested groups and a missing optimizer", async () => {
  const weights: KerasWeights = {
    model: { name: "m", vars: [] },
    layers: new Map([
      ["layers/dense", {
        name: "dense",
        vars: [
          { shape: [2, 3], dtype: "float64", data: new Float64Array([1, 2, 3, 4, 5, 6.5]) },
          { shape: [], dtype: "int32", data: new Int32Array([-7]) },
        ],
      }],
      ["layers/functional/layers/dense", {
        name: "inner",
        vars: [{ shape: [4], dtype: "uint8", data: new Uint8Array([0, 1, 254, 255]) }],
      }],
      ["layers/functional", { name: "functional", vars: [] }],
    ]),
    optimizer: null,
  };
  const decoded = await decodeWeightsH5(await encodeWeightsH5(weights));
  assertWeightsEqual(decoded, weights);
});

Deno.test("encodeWeightsH5 rejects data that does not match shape or dtype", async () => {
  const bad = (data: Float32Array | Int32Array, shape: number[]): KerasWeights => ({
    model: { name: "m", vars: [] },
    layers: new Map([["layers/dense", { name: "dense", vars: [{ shape, dtype: "float32", data }] }]]),
    optimizer: null,
  });
  await assert.rejects(
    encodeWeightsH5(bad(new Float32Array(5), [2, 3])),
    /shape \[2,3\] needs 6 values: current data has 5/,
  );
  await assert.rejects(encodeWeightsH5(bad(new Int32Array(6), [2, 3])), /float32 needs a Float32Array/);
  const badPath: KerasWeights = {
    model: { name: "m", vars: [] },
    layers: new Map([["layers//x", { name: null, vars: [] }]]),
    optimizer: null,
  };
  await assert.rejects(encodeWeightsH5(badPath), RangeError);
});

Deno.test("a failed writeWeightsH5 leaves the previous file identical and no temporary file", async () => {
  const dir = await tempDir();
  try {
    const out = `${dir}/model.weights.h5`;
    await Deno.copyFile(`${FIXTURES}multi_input.weights.h5`, out);
    const before = await Deno.readFile(out);
    const bad: KerasWeights = {
      model: { name: "m", vars: [] },
      layers: new Map([["layers/dense", {
        name: "dense",
        vars: [{ shape: [3], dtype: "float32", data: new Float32Array(2) }],
      }]]),
      optimizer: null,
    };
    await assert.rejects(writeWeightsH5(out, bad), RangeError);
    assert.deepEqual(await Deno.readFile(out), before);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.weights.h5"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readWeightsH5 explains missing, non-HDF5 and truncated files", async () => {
  const dir = await tempDir();
  try {
    const missing = `${dir}/nope.weights.h5`;
    await assert.rejects(readWeightsH5(missing), (e: unknown) => {
      assert.ok(e instanceof KerasFileError);
      assert.equal(e.file, missing);
      assert.match(e.message, /Cannot read Keras weights file .*nope\.weights\.h5.*Check the path/);
      return true;
    });

    const zip = `${dir}/model.keras`;
    await Deno.copyFile(`${FIXTURES}regularized_binary.keras`, zip);
    await assert.rejects(readWeightsH5(zip), (e: unknown) => {
      assert.ok(e instanceof KerasFileError);
      assert.match(
        e.message,
        /model\.keras as Keras weights as it is not an HDF5 file: .* starts with 50 4b 03 04/,
      );
      assert.match(e.message, /readKerasArchive/);
      return true;
    });
    await assert.rejects(decodeWeightsH5(new Uint8Array(0)), /empty file/);

    const original = await Deno.readFile(`${FIXTURES}multi_input.weights.h5`);
    for (const keep of [0.5, 0.95]) {
      const truncated = `${dir}/truncated-${keep}.weights.h5`;
      await Deno.writeFile(truncated, original.subarray(0, Math.floor(original.length * keep)));
      await assert.rejects(readWeightsH5(truncated), (e: unknown) => {
        assert.ok(e instanceof KerasFileError, String(e));
        assert.equal(e.file, truncated);
        assert.match(e.message, /truncated or damaged/);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
