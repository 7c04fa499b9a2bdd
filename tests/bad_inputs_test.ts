/**
 * The bad-input corpus: each bad config file, dataset file, model, checkpoint and NATS address must fail
 * with a non-zero exit or a rejected promise, a message that names the value and the fix, and nothing
 * partial left behind. Text inputs live in tests/bad_inputs/; binary ones are generated here.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { zipSync } from "npm:fflate@0.8.3";
import { datasets, layers, models, Sequential, tf } from "../mod.ts";
import { DatasetError } from "../shared/io/dataset_error.ts";
import { loadDataset } from "../shared/io/datasets.ts";
import { encodeNpy, parseNpy } from "../shared/io/npy.ts";
import {
  decodeKerasArchive,
  encodeKerasArchive,
  readWeightsH5,
  writeWeightsH5,
} from "../shared/io/keras/mod.ts";
import { startNatsServer } from "../shared/io/nats/mod.ts";

const MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;
const CONFIGS = new URL("./bad_inputs/config/", import.meta.url).pathname;

/** Cases tried and passed, for the corpus summary. */
const tally = { tried: 0, passed: 0 };

/** Runs one case as a step and counts it. */
async function corpusCase(t: Deno.TestContext, name: string, fn: () => Promise<void>): Promise<void> {
  tally.tried++;
  if (await t.step(name, fn)) tally.passed++;
}

/** Asserts that `fn` rejects within `seconds` and returns the error. */
async function rejection(fn: () => Promise<unknown>, seconds = 10): Promise<Error> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${seconds}s (hang)`)), seconds * 1000);
  });
  try {
    await Promise.race([fn(), deadline]);
  } catch (e) {
    assert.ok(!(e instanceof Error && e.message.endsWith("(hang)")), (e as Error).message);
    return e as Error;
  } finally {
    clearTimeout(timer);
  }
  assert.fail("expected a rejection, but the call succeeded");
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await listTree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------------
// Config files for `deno run -A coordinator/main.ts --config F`: exit 2, message names field, value, fix.

const CONFIG_CASES: [file: string, pattern: RegExp][] = [
  ["wrong_type.yaml", /epochs in .*wrong_type\.yaml must be a number: current value is "ten"/],
  ["wrong_type.json", /batchSize in .*wrong_type\.json must be a number: current value is "64"/],
  [
    "unknown_key.yaml",
    /learning_rate in .*unknown_key\.yaml is not an option: remove it or use one of .*Did you mean learningRate\?/,
  ],
  [
    "unknown_key.json",
    /batch_size in .*unknown_key\.json is not an option: remove it or use one of .*Did you mean batchSize\?/,
  ],
  ["epochs_zero.yaml", /epochs in .*epochs_zero\.yaml must be ≥ 1: current value is 0/],
  ["epochs_negative.yaml", /epochs in .* must be ≥ 1: current value is -2/],
  ["batch_size_zero.json", /batchSize in .* must be ≥ 1: current value is 0/],
  ["validation_split_one.yaml", /validationSplit in .* must be > 0 and < 1: current value is 1/],
  ["validation_split_zero.yaml", /validationSplit in .* must be > 0 and < 1: current value is 0/],
  ["validation_split_negative.json", /validationSplit in .* must be > 0 and < 1: current value is -0\.2/],
  ["malformed.yaml", /Cannot parse config file .*malformed\.yaml as it must be valid YAML: .*line 2/s],
  ["malformed.json", /Cannot parse config file .*malformed\.json as it must be valid JSON: .*position 15/],
  ["empty.yaml", /empty\.yaml must hold a mapping of options, e\.g\. "epochs: 10": it is empty/],
  ["empty.json", /empty\.json must hold a mapping of options, e\.g\. "epochs: 10": it is empty/],
  ["list.yaml", /list\.yaml must hold a mapping of options.*found a list/],
  ["missing.yaml", /Cannot read config file .*missing\.yaml: No such file/],
];

Deno.test("bad config files exit 2 with the field, the value and the fix, leaving no files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-bad-config-" });
  try {
    const run = async ([file]: [string, RegExp], i: number) => {
      const out = `${dir}/${i}`;
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "--config",
          CONFIGS + file,
          "--summary",
          `${out}/summary.json`,
          "--checkpoint-dir",
          `${out}/ckpt`,
          "--logdir",
          `${out}/logs`,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      return { code: r.code, err: new TextDecoder().decode(r.stderr), out };
    };
    // Two processes at a time: each is a separate Deno start-up.
    const results: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < CONFIG_CASES.length; i += 2) {
      results.push(...await Promise.all(CONFIG_CASES.slice(i, i + 2).map((c, j) => run(c, i + j))));
    }
    for (const [i, [file, pattern]] of CONFIG_CASES.entries()) {
      const r = results[i]!;
      await corpusCase(t, `config ${file}`, async () => {
        assert.equal(r.code, 2, r.err);
        assert.match(r.err, pattern);
        assert.deepEqual(await listTree(dir).then((names) => names.filter((n) => n.startsWith(`${i}`))), []);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Dataset files: loadDataset over a system directory holding small, deliberately broken Fashion-MNIST files.

function idx(typeByte: number, shape: number[], payload: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(header.buffer);
  header.set([0, 0, typeByte, shape.length]);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

const N = 3;
const GOOD = {
  images: () => gzipSync(idx(0x08, [N, 28, 28], new Uint8Array(N * 784).fill(7))),
  labels: () => gzipSync(idx(0x08, [N], Uint8Array.from([1, 2, 3]))),
};

type DatasetFiles = Partial<Record<"train-images" | "train-labels", Uint8Array>>;

async function loadBroken(files: DatasetFiles): Promise<Error> {
  const root = await Deno.makeTempDir({ prefix: "shoal-bad-data-" });
  try {
    const dir = `${root}/system/fashion-mnist`;
    await Deno.mkdir(dir, { recursive: true });
    for (const prefix of ["train", "t10k"]) {
      const images = prefix === "train" ? files["train-images"] : undefined;
      const labels = prefix === "train" ? files["train-labels"] : undefined;
      await Deno.writeFile(`${dir}/${prefix}-images-idx3-ubyte.gz`, images ?? GOOD.images());
      await Deno.writeFile(`${dir}/${prefix}-labels-idx1-ubyte.gz`, labels ?? GOOD.labels());
    }
    const error = await rejection(() =>
      loadDataset("fashion_mnist", {
        cacheDir: `${root}/cache`,
        systemDir: `${root}/system`,
        fetch: () => Promise.reject(new Error("no download expected in this test")),
      })
    );
    assert.equal(error.name, "DatasetError", error.message);
    assert.deepEqual(await listTree(root).then((n) => n.filter((p) => p.startsWith("cache"))), []);
    return error;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("broken dataset files name the file, what is wrong and what to do", async (t) => {
  const images = GOOD.images();
  const cases: [string, DatasetFiles, RegExp][] = [
    [
      "truncated gzip",
      { "train-images": images.subarray(0, images.length >> 1) },
      /Cannot decompress .*train-images-idx3-ubyte\.gz .*truncated or corrupt; delete it and download it again/,
    ],
    [
      "corrupt gzip",
      { "train-labels": Uint8Array.from([...GOOD.labels().subarray(0, 10), 0xff, 0xff, 0xff, 0xff, 0xff]) },
      /Cannot decompress .*train-labels-idx1-ubyte\.gz .*truncated or corrupt/,
    ],
    [
      "wrong IDX magic",
      { "train-images": gzipSync(Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4])) },
      /must start with the magic 00 00 <type> <ndim>: found 50 4b 03 04\. .*re-download it/,
    ],
    [
      "truncated IDX payload",
      { "train-images": gzipSync(idx(0x08, [N, 28, 28], new Uint8Array(N * 784 - 100))) },
      /shape \[3, 28, 28\] of uint8 needs 2352 payload bytes: found 2252 \(truncated\)\. .*re-download it/,
    ],
    [
      "label/image count mismatch",
      { "train-labels": gzipSync(idx(0x08, [2], Uint8Array.from([1, 2]))) },
      /must hold one label per image: found 3 images and 2 labels\. .*delete both to download them again/,
    ],
    [
      "label out of range",
      { "train-labels": gzipSync(idx(0x08, [N], Uint8Array.from([1, 12, 3]))) },
      /class index 0–9: label 1 is 12\. .*delete it to download it again/,
    ],
    [
      "wrong image size",
      { "train-images": gzipSync(idx(0x08, [N, 14, 14], new Uint8Array(N * 196))) },
      /must have shape \[n, 28, 28\]: found \[3, 14, 14\]\. Check that the file belongs to this dataset/,
    ],
    [
      "labels of the wrong IDX type",
      { "train-labels": gzipSync(idx(0x0c, [N], new Uint8Array(4 * N))) },
      /must hold a 1-D uint8 array: found 1-D int32\. Check that the file belongs/,
    ],
  ];
  for (const [name, files, pattern] of cases) {
    await corpusCase(t, `dataset ${name}`, async () => {
      assert.match((await loadBroken(files)).message, pattern);
    });
  }
  await corpusCase(t, "npy with NaN and rejectNonFinite", () => {
    const bytes = encodeNpy({ data: Float32Array.from([0, 1, NaN, 3]), shape: [2, 2] });
    assert.throws(
      () => parseNpy(bytes, "x.npy", { rejectNonFinite: true }),
      /x\.npy: element 2 \(index \[1, 0\]\) is NaN.*numpy\.nan_to_num.*rejectNonFinite: false/,
    );
    return Promise.resolve();
  });
  await corpusCase(t, "npy of an unsupported dtype", () => {
    const bytes = encodeNpy({ data: new Float32Array(4), shape: [4] });
    const swapped = bytes.slice();
    swapped[new TextDecoder().decode(bytes).indexOf("'<f4'") + 1] = ">".charCodeAt(0);
    assert.throws(
      () => parseNpy(swapped, "big.npy"),
      /big\.npy: dtype '>f4' is not supported: supported dtypes are <f4.*astype\('<f4'\)/,
    );
    return Promise.resolve();
  });
});

Deno.test("broken npz shards name the shard, what is wrong and the fix, before any training", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-bad-shards-" });
  const fixtures = new URL("./fixtures/datasets/", import.meta.url).pathname;
  const shard = async (
    name: string,
    arrays: Record<string, { data: Float32Array | Uint8Array; shape: number[] }>,
  ) => {
    const files: Record<string, [Uint8Array, { level: 0 }]> = {};
    for (const [k, a] of Object.entries(arrays)) files[`${k}.npy`] = [encodeNpy(a), { level: 0 }];
    await Deno.writeFile(`${dir}/${name}`, zipSync(files));
    return `${dir}/${name}`;
  };
  const good = () => ({
    x: { data: new Float32Array(6), shape: [3, 2] },
    y: { data: new Uint8Array(3), shape: [3] },
  });
  try {
    const whole = await Deno.readFile(await shard("good.npz", good()));
    await Deno.writeFile(`${dir}/cut.npz`, whole.subarray(0, whole.length - 40));
    const bigEndian = encodeNpy({ data: new Float32Array(6), shape: [3, 2] });
    bigEndian[new TextDecoder().decode(bigEndian).indexOf("'<f4'") + 1] = ">".charCodeAt(0);
    await Deno.writeFile(`${dir}/swapped.npz`, zipSync({ "x.npy": [bigEndian, { level: 0 }] }));
    await shard("mixed-0.npz", good());
    await shard("mixed-1.npz", { ...good(), x: { data: new Float32Array(9), shape: [3, 3] } });
    await shard("rows-0.npz", { ...good(), y: { data: new Uint8Array(2), shape: [2] } });
    const cases: [string, string, { x: string; y?: string }, RegExp][] = [
      [
        "an empty glob",
        `${dir}/train-*.npz`,
        { x: "x" },
        /no file in .* matches train-\*\.npz: .*Check the pattern/,
      ],
      [
        "a missing key",
        `${dir}/good.npz`,
        { x: "images", y: "y" },
        /good\.npz .*no such array: it holds \[x, y\]/,
      ],
      [
        "a compressed shard",
        `${fixtures}/compressed.npz`,
        { x: "x" },
        /compressed\.npz.*numpy\.savez instead of numpy\.savez_compressed/,
      ],
      ["a truncated shard", `${dir}/cut.npz`, { x: "x" }, /cut\.npz .*truncated.*write it again/],
      [
        "an unsupported dtype",
        `${dir}/swapped.npz`,
        { x: "x" },
        /swapped\.npz:x\.npy: dtype '>f4' is not supported.*astype/,
      ],
      [
        "shards of different row shapes",
        `${dir}/mixed-*.npz`,
        { x: "x" },
        /mixed-1\.npz with .*mixed-0\.npz .*<f4 rows of \[2\], .*<f4 rows of \[3\]\. Write all shards with the same/,
      ],
      ["arrays of different row counts", `${dir}/rows-0.npz`, { x: "x", y: "y" }, /"x" has 3, "y" has 2/],
    ];
    for (const [name, pattern, keys, expected] of cases) {
      await corpusCase(t, `npz ${name}`, async () => {
        const e = await rejection(() => datasets.fromNpz(pattern, keys));
        assert.ok(e instanceof DatasetError, `${e.name}: ${e.message}`);
        assert.match(e.message, expected);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Models through the public API (mod.ts).

function mlp(units = 10): Sequential {
  const model = new Sequential([
    new layers.Dense(8, { activation: "relu", inputShape: [784] }),
    new layers.Dense(units, { activation: "softmax" }),
  ], { seed: 1 });
  model.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"] });
  return model;
}

Deno.test("bad models and labels fail in the API with the value and the fix", async (t) => {
  await corpusCase(t, "images [n,28,28] into Dense inputShape [784]", async () => {
    const e = await rejection(() =>
      mlp().fit(tf.zeros([4, 28, 28]), tf.tensor1d([0, 1, 2, 3]), { verbose: 0 })
    );
    assert.match(e.message, /784.*\[null,28,28\].*Flatten/s);
  });
  await corpusCase(t, "unknown activation", () => {
    assert.throws(
      () => new layers.Dense(4, { activation: "swishy" }),
      /Unknown activation: 'swishy'. Use one of: relu/,
    );
    return Promise.resolve();
  });
  await corpusCase(t, "unknown loss", () => {
    assert.throws(() => mlp().compile({ loss: "hinge_loss" }), /Unknown loss: 'hinge_loss'. Use one of: /);
    return Promise.resolve();
  });
  await corpusCase(t, "labels out of range for the output size", async () => {
    const e = await rejection(() =>
      mlp(3).fit(tf.zeros([4, 784]), tf.tensor1d([0, 1, 7, 2]), { verbose: 0 })
    );
    assert.match(e.message, /label value of 7 \(sample 2\).*\[0, 3\)/s);
  });
  await corpusCase(t, "unknown layer class in a .keras config", async () => {
    const dir = await Deno.makeTempDir({ prefix: "shoal-bad-model-" });
    try {
      const good = `${dir}/good.keras`;
      await mlp().save(good);
      const archive = await decodeKerasArchive(await Deno.readFile(good), good);
      const config = JSON.parse(
        JSON.stringify(archive.config).replace('"class_name":"Dense"', '"class_name":"ConvLSTM1D"'),
      );
      // The groups a Keras model of that class would have: the first layer's group is named after its class.
      const renamed = new Map([...archive.weights.layers].map(([k, v]) => [
        k === "layers/dense" ? "layers/conv_lstm1d" : k === "layers/dense_1" ? "layers/dense" : k,
        v,
      ]));
      const bad = `${dir}/conv_lstm.keras`;
      const weights = { ...archive.weights, layers: renamed };
      await Deno.writeFile(bad, await encodeKerasArchive({ config, weights }));
      const e = await rejection(() => models.loadModel(bad));
      assert.match(
        e.message,
        /Cannot load layer "dense" \(class ConvLSTM1D\) as Shoal does not support a layer named ConvLSTM1D yet: the supported layers are .*Dense/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Checkpoints.

Deno.test("bad checkpoints fail with the file, the weight and the fix, and change nothing", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-bad-ckpt-" });
  try {
    const good = `${dir}/good.keras`;
    await mlp().save(good);
    const goodBytes = await Deno.readFile(good);
    const weightsOf = (m: Sequential) => m.getWeights().map((w) => Array.from(w));

    await corpusCase(t, "truncated .keras zip", async () => {
      const path = `${dir}/truncated.keras`;
      await Deno.writeFile(path, goodBytes.subarray(0, goodBytes.length - 200));
      const e = await rejection(() => models.loadModel(path));
      assert.equal(e.name, "KerasFileError");
      assert.match(e.message, /truncated\.keras as it is truncated: .*save the model again/);
    });
    await corpusCase(t, "a PNG renamed .keras", async () => {
      const path = `${dir}/picture.keras`;
      const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Uint8Array(56)]);
      await Deno.writeFile(path, png);
      const e = await rejection(() => models.loadModel(path));
      assert.match(
        e.message,
        /picture\.keras as a Keras archive as it is not a zip file \(64 bytes starting 89 50 4e 47, .*model\.save/,
      );
    });
    await corpusCase(t, ".keras of another model into loadWeights", async () => {
      const other = `${dir}/other.keras`;
      await mlp(5).save(other);
      const model = mlp();
      const before = weightsOf(model);
      const e = await rejection(() => model.loadWeights(other));
      assert.equal(e.name, "ModelMismatchError");
      assert.match(
        e.message,
        /Cannot load weight .*kernel from .*other\.keras as its shape differs: the model expects \[8, 10\] but the file .* has \[8, 5\]/,
      );
      assert.ok("weight" in e && typeof e.weight === "string" && e.weight.length > 0);
      assert.deepEqual(weightsOf(model), before, "a failed load must leave the weights unchanged");
    });
    await corpusCase(t, "weights file missing a layer group", async () => {
      const full = `${dir}/full.weights.h5`;
      await mlp().saveWeights(full);
      const weights = await readWeightsH5(full);
      const [dropped] = [...weights.layers.keys()].slice(-1);
      const partial = `${dir}/partial.weights.h5`;
      const layersLeft = new Map([...weights.layers].filter(([k]) => k !== dropped));
      await writeWeightsH5(partial, { ...weights, layers: layersLeft });
      const model = mlp();
      const before = weightsOf(model);
      const e = await rejection(() => model.loadWeights(partial));
      assert.equal(e.name, "ModelMismatchError");
      assert.match(
        e.message,
        new RegExp(
          `partial\\.weights\\.h5 as it has no weights for layer .*group "${dropped}/vars".*same layers`,
        ),
      );
      assert.deepEqual(weightsOf(model), before);
    });
    await corpusCase(t, "a failed save leaves the previous file intact and no temporary files", async () => {
      const target = `${dir}/keep.keras`;
      await Deno.writeFile(target, goodBytes);
      // A directory where the archive's temporary file would go makes the write fail.
      await Deno.mkdir(`${dir}/blocked.keras`);
      const e = await rejection(() => mlp().save(`${dir}/blocked.keras`));
      assert.match(e.message, /blocked\.keras/);
      assert.deepEqual(await Deno.readFile(target), goodBytes);
      const stray = (await listTree(dir)).filter((n) => /\.tmp|~|\.partial/i.test(n));
      assert.deepEqual(stray, []);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Network: a bad or dead NATS address must fail in seconds, naming the URL and what to do.

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("bad NATS addresses fail fast naming the URL and the fix", async (t) => {
  const x = tf.zeros([4, 784]);
  const y = tf.tensor1d([0, 1, 2, 3]);
  const fitWith = (nats: string) => () =>
    mlp().fit(x, y, { verbose: 0, distribute: { workers: 1, nats, joinTimeoutSeconds: 5 } });
  const names = (url: string) => (e: Error) => () => {
    assert.ok(e.message.includes(url), `URL not named: ${e.message}`);
    assert.match(e.message, /nats-server|--nats|omit nats|start/i);
  };
  const port = freePort();
  const cases: [string, string][] = [
    ["wrong URL scheme", `http://127.0.0.1:${port}`],
    ["not a URL", "nats://exa mple:4222"],
    ["refused port", `nats://127.0.0.1:${port}`],
  ];
  for (const [name, url] of cases) {
    await corpusCase(t, `nats ${name}`, async () => {
      names(url)(await rejection(fitWith(url), 5))();
    });
  }
  await corpusCase(t, "nats server gone at start", async () => {
    const server = await startNatsServer();
    const url = server.url;
    await server.stop();
    names(url)(await rejection(fitWith(url), 5))();
  });
});

Deno.test("bad-input corpus summary", () => {
  console.log(`bad-input corpus: ${tally.tried} tried, ${tally.passed} passed`);
  assert.equal(tally.passed, tally.tried);
});
