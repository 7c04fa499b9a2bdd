import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { unzipSync, zipSync } from "npm:fflate@0.8.3";
import {
  decodeKerasArchive,
  encodeKerasArchive,
  formatKerasDate,
  KERAS_FORMAT_VERSION,
  readKerasArchive,
  writeKerasArchive,
} from "./archive.ts";
import { KerasFileError } from "./errors.ts";
import { type KerasWeights, readWeightsH5 } from "./weights_h5.ts";

const FIXTURES = fileURLToPath(new URL("../../../tests/fixtures/keras/", import.meta.url));
const NAMES = ["fashion_mlp", "multi_input", "regularized_binary"] as const;
const SMALL = `${FIXTURES}regularized_binary.keras`;

function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "keras-archive-" });
}

/** Zip entries in archive order with their compression method, read from the local file headers. */
function zipEntries(bytes: Uint8Array): { name: string; method: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: { name: string; method: number }[] = [];
  let offset = 0;
  while (view.getUint32(offset, true) === 0x04034b50) {
    const method = view.getUint16(offset + 8, true);
    const compressedSize = view.getUint32(offset + 18, true);
    const nameLength = view.getUint16(offset + 26, true);
    const extraLength = view.getUint16(offset + 28, true);
    const name = new TextDecoder().decode(bytes.subarray(offset + 30, offset + 30 + nameLength));
    entries.push({ name, method });
    offset += 30 + nameLength + extraLength + compressedSize;
  }
  return entries;
}

function assertWeightsEqual(actual: KerasWeights, expected: KerasWeights): void {
  assert.deepEqual(actual.model, expected.model);
  assert.deepEqual([...actual.layers.entries()].sort(), [...expected.layers.entries()].sort());
  assert.deepEqual(actual.optimizer, expected.optimizer);
}

for (const name of NAMES) {
  Deno.test(`readKerasArchive reads ${name}: config, metadata, and the same weights as its .weights.h5`, async () => {
    const archive = await readKerasArchive(`${FIXTURES}${name}.keras`);
    const config = archive.config as { class_name: string; config: { layers: unknown[] } };
    assert.equal(config.class_name, name === "multi_input" ? "Functional" : "Sequential");
    assert.ok(config.config.layers.length > 0);
    assert.equal(archive.metadata.keras_version, "3.15.1");
    assert.match(archive.metadata.date_saved, /^\d{4}-\d{2}-\d{2}@\d{2}:\d{2}:\d{2}$/);
    assertWeightsEqual(archive.weights, await readWeightsH5(`${FIXTURES}${name}.weights.h5`));
  });
}

Deno.test("writeKerasArchive writes a valid stored zip that reads back equal", async () => {
  const dir = await tempDir();
  try {
    const source = await readKerasArchive(`${FIXTURES}multi_input.keras`);
    const out = `${dir}/model.keras`;
    const before = formatKerasDate(new Date());
    await writeKerasArchive(out, { config: source.config, weights: source.weights });
    const bytes = await Deno.readFile(out);

    assert.deepEqual(zipEntries(bytes), [
      { name: "metadata.json", method: 0 },
      { name: "config.json", method: 0 },
      { name: "model.weights.h5", method: 0 },
    ]);
    const entries = unzipSync(bytes);
    const metadata = JSON.parse(new TextDecoder().decode(entries["metadata.json"]));
    assert.equal(metadata.keras_version, KERAS_FORMAT_VERSION);
    assert.ok(metadata.date_saved >= before && metadata.date_saved <= formatKerasDate(new Date()));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(entries["config.json"])), source.config);
    assertWeightsEqual(await readWeightsH5(entries["model.weights.h5"]!), source.weights);

    const back = await readKerasArchive(out);
    assert.deepEqual(back.config, source.config);
    assertWeightsEqual(back.weights, source.weights);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeKerasArchive keeps caller metadata and formats dates as Keras does", async () => {
  const source = await readKerasArchive(SMALL);
  const metadata = { keras_version: "3.99.0", date_saved: "2030-01-02@03:04:05", trainer: "shoal" };
  const back = await decodeKerasArchive(await encodeKerasArchive({ ...source, metadata }));
  assert.deepEqual(back.metadata, metadata);
  assert.equal(formatKerasDate(new Date(2026, 10, 5, 7, 8, 9)), "2026-11-05@07:08:09");
});

Deno.test("a failed writeKerasArchive leaves the previous archive identical and no temporary file", async () => {
  const dir = await tempDir();
  try {
    const out = `${dir}/model.keras`;
    await Deno.copyFile(SMALL, out);
    const before = await Deno.readFile(out);
    const source = await readKerasArchive(SMALL);
    const broken: KerasWeights = {
      ...source.weights,
      layers: new Map([["layers/dense", {
        name: "dense",
        vars: [{ shape: [4], dtype: "float32", data: new Float32Array(3) }],
      }]]),
    };
    await assert.rejects(writeKerasArchive(out, { config: source.config, weights: broken }), RangeError);
    assert.deepEqual(await Deno.readFile(out), before);

    // A failure at rename time (the target is a directory) also cleans up.
    const blocked = `${dir}/blocked.keras`;
    await Deno.mkdir(blocked);
    await assert.rejects(writeKerasArchive(blocked, source));
    assert.ok((await Deno.stat(blocked)).isDirectory);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["blocked.keras", "model.keras"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function rejectsWith(source: string | Uint8Array, pattern: RegExp, file?: string): Promise<void> {
  await assert.rejects(readKerasArchive(source), (e: unknown) => {
    assert.ok(e instanceof KerasFileError, String(e));
    assert.match(e.message, pattern);
    if (file) assert.equal(e.file, file);
    return true;
  });
}

Deno.test("readKerasArchive explains truncated, non-zip and incomplete archives", async () => {
  const dir = await tempDir();
  try {
    const original = await Deno.readFile(SMALL);
    const entries = unzipSync(original);

    const truncated = `${dir}/truncated.keras`;
    await Deno.writeFile(truncated, original.subarray(0, Math.floor(original.length / 2)));
    await rejectsWith(truncated, /truncated\.keras as it is truncated: .*save the model again/, truncated);

    const h5 = `${dir}/weights.keras`;
    await Deno.copyFile(`${FIXTURES}regularized_binary.weights.h5`, h5);
    await rejectsWith(
      h5,
      /weights\.keras as a Keras archive as it is not a zip file .*an HDF5 file: read it with readWeightsH5/,
      h5,
    );
    await rejectsWith(
      new TextEncoder().encode("hello"),
      /<bytes> as a Keras archive as it is not a zip file/,
    );
    await rejectsWith(`${dir}/missing.keras`, /Cannot read Keras archive .*missing\.keras: .*Check the path/);

    const noConfig = zipSync({
      "metadata.json": entries["metadata.json"]!,
      "model.weights.h5": entries["model.weights.h5"]!,
    });
    await rejectsWith(noConfig, /has no config\.json entry; it has metadata\.json, model\.weights\.h5\./);
    const noWeights = zipSync({
      "metadata.json": entries["metadata.json"]!,
      "config.json": entries["config.json"]!,
    });
    await rejectsWith(noWeights, /has no model\.weights\.h5 entry; it has metadata\.json, config\.json\./);
    const badJson = zipSync({ ...entries, "config.json": new TextEncoder().encode("{not json") });
    await rejectsWith(badJson, /config\.json in Keras archive <bytes> as it is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readKerasArchive names the layer group its weights lack", async () => {
  const source = await readKerasArchive(SMALL);
  const layers = new Map(source.weights.layers);
  layers.delete("layers/dense_1");
  const bytes = await encodeKerasArchive({ config: source.config, weights: { ...source.weights, layers } });
  await rejectsWith(
    bytes,
    /<bytes>!model\.weights\.h5 into this model as it has no group "layers\/dense_1\/vars" for layer "dense_10" \(Dense\)/,
  );

  const fewer = new Map(source.weights.layers);
  fewer.set("layers/dense_2", {
    name: "dense_11",
    vars: source.weights.layers.get("layers/dense_2")!.vars.slice(0, 1),
  });
  const bytes2 = await encodeKerasArchive({
    config: source.config,
    weights: { ...source.weights, layers: fewer },
  });
  await rejectsWith(
    bytes2,
    /layer "dense_11" \(Dense\) needs 2 variables but group "layers\/dense_2\/vars" has 1/,
  );
});
