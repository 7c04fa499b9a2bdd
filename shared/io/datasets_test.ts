import assert from "node:assert/strict";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { zipSync } from "npm:fflate@0.8.3";
import { DatasetError } from "./dataset_error.ts";
import { type DatasetName, loadDataset, type LoadDatasetOptions } from "./datasets.ts";
import { sha256Hex } from "./download.ts";
import { encodeNpy } from "./npy.ts";

const DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

/**
 * SHA-256 of uncompressed upstream Fashion-MNIST files (the data Keras's archives hold). The 47 MB
 * train images are left out to keep the test fast.
 */
const UPSTREAM_CONTENT_SHA256: Record<string, string> = {
  "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
};

const noNetwork: typeof fetch = () => Promise.reject(new Error("the network must not be used here"));

/** A gzip IDX file of uint8 values. */
function idxGz(shape: number[], values: (i: number) => number): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * shape.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) out[4 + 4 * shape.length + i] = values(i);
  return new Uint8Array(gzipSync(out));
}

interface FashionShape {
  train?: number;
  trainLabels?: number;
  test?: number;
  width?: number;
  label?: (i: number) => number;
}

/** The four Fashion-MNIST archives, with `train` and `test` images whose pixels encode their index. */
function fashionFiles(shape: FashionShape = {}): Record<string, Uint8Array> {
  const { train = 3, test = 2, width = 28, label = (i: number) => (i * 3) % 10 } = shape;
  const trainLabels = shape.trainLabels ?? train;
  return {
    "train-labels-idx1-ubyte.gz": idxGz([trainLabels], label),
    "train-images-idx3-ubyte.gz": idxGz([train, 28, width], (i) => Math.floor(i / (28 * width))),
    "t10k-labels-idx1-ubyte.gz": idxGz([test], (i) => 9 - i),
    "t10k-images-idx3-ubyte.gz": idxGz([test, 28, width], (i) => 100 + Math.floor(i / (28 * width))),
  };
}

async function hashes(files: Record<string, Uint8Array>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(files)) out[name] = await sha256Hex(bytes);
  return out;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** A loopback HTTP server for `files` (by last path segment), a cache dir and an empty system dir. */
async function mirror(files: Record<string, Uint8Array>) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const name = new URL(req.url).pathname.split("/").pop() ?? "";
    requests.push(name);
    const body = files[name];
    return body === undefined
      ? new Response("not found", { status: 404 })
      : new Response(body as Uint8Array<ArrayBuffer>);
  });
  const root = await Deno.makeTempDir();
  return {
    requests,
    root,
    baseUrl: `http://127.0.0.1:${server.addr.port}/mirror/`,
    cacheDir: join(root, "cache"),
    systemDir: join(root, "system"),
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** Loads from a system dir holding `files`, with an empty cache and no network. */
async function loadFromSystemDir(name: DatasetName, files: Record<string, Uint8Array>) {
  await using m = await mirror({});
  const dir = join(m.systemDir, name.replaceAll("_", "-"));
  await Deno.mkdir(dir, { recursive: true });
  for (const [file, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, file), bytes);
  return await loadDataset(name, { cacheDir: m.cacheDir, systemDir: m.systemDir, fetch: noNetwork });
}

Deno.test("loadDataset reads the Debian Fashion-MNIST files", async () => {
  await using m = await mirror({});
  const start = performance.now();
  const data = await loadDataset("fashion_mnist", { cacheDir: m.cacheDir, fetch: noNetwork });
  const seconds = (performance.now() - start) / 1000;
  assert.ok(seconds < 10, `loading took ${seconds} s`);
  assert.deepEqual(data.xTrain.shape, [60000, 28, 28]);
  assert.deepEqual(data.xTest.shape, [10000, 28, 28]);
  assert.ok(data.xTrain.data instanceof Uint8Array && data.yTrain instanceof Uint8Array);
  assert.equal(data.xTrain.data.length, 60000 * 784);
  assert.equal(data.xTest.data.length, 10000 * 784);
  assert.deepEqual([data.yTrain.length, data.yTest.length], [60000, 10000]);
  assert.deepEqual(Array.from(data.yTrain.subarray(0, 4)), [9, 0, 0, 3]);
  assert.deepEqual(Array.from(data.yTest.subarray(0, 4)), [9, 2, 1, 1]);
  const perClass = new Array(10).fill(0);
  for (const y of data.yTrain) perClass[y]++;
  assert.deepEqual(perClass, new Array(10).fill(6000));
  assert.equal(data.xTrain.data[14 * 28 + 14], 217);
  assert.ok(data.files.every((f) => f.startsWith(`${DEBIAN_DIR}/`)), data.files.join());
  assert.deepEqual(await entries(m.cacheDir), []);
});

Deno.test("the Debian Fashion-MNIST archives hold the same data as Keras's", async () => {
  for (const [file, sha256] of Object.entries(UPSTREAM_CONTENT_SHA256)) {
    const content = gunzipSync(await Deno.readFile(join(DEBIAN_DIR, file)));
    assert.equal(await sha256Hex(content), sha256, file);
  }
});

Deno.test("loadDataset downloads from a mirror into the cache, then reads the cache", async () => {
  const files = fashionFiles();
  await using m = await mirror(files);
  const options: LoadDatasetOptions = {
    cacheDir: m.cacheDir,
    systemDir: m.systemDir,
    baseUrl: m.baseUrl,
    sha256: await hashes(files),
  };
  const data = await loadDataset("fashion_mnist", options);
  assert.deepEqual(data.xTrain.shape, [3, 28, 28]);
  assert.deepEqual(data.xTest.shape, [2, 28, 28]);
  assert.deepEqual(Array.from(data.yTrain), [0, 3, 6]);
  assert.deepEqual(Array.from(data.yTest), [9, 8]);
  assert.deepEqual([data.xTrain.data[0], data.xTrain.data[784 * 2 + 5], data.xTest.data[784]], [0, 2, 101]);
  assert.deepEqual(m.requests.sort(), Object.keys(files).sort());
  const cached = join(m.cacheDir, "fashion_mnist");
  assert.deepEqual(await entries(cached), Object.keys(files).sort());
  assert.deepEqual(
    await Deno.readFile(join(cached, "train-images-idx3-ubyte.gz")),
    files["train-images-idx3-ubyte.gz"],
  );

  const again = await loadDataset("fashion_mnist", { ...options, fetch: noNetwork });
  assert.deepEqual(Array.from(again.yTrain), [0, 3, 6]);
  assert.ok(again.files.every((f) => f.startsWith(cached)));
  assert.equal(m.requests.length, 4);
});

Deno.test("loadDataset takes the cache dir and mirror from SHOAL_DATA and SHOAL_DATASET_URL", async () => {
  const files = fashionFiles();
  await using m = await mirror(files);
  const saved = { data: Deno.env.get("SHOAL_DATA"), url: Deno.env.get("SHOAL_DATASET_URL") };
  Deno.env.set("SHOAL_DATA", m.cacheDir);
  Deno.env.set("SHOAL_DATASET_URL", m.baseUrl.replace(/\/$/, ""));
  try {
    const data = await loadDataset("fashion_mnist", { systemDir: null, sha256: await hashes(files) });
    assert.equal(data.yTest.length, 2);
    assert.equal(m.requests.length, 4);
    assert.equal((await entries(join(m.cacheDir, "fashion_mnist"))).length, 4);
  } finally {
    for (const [key, value] of [["SHOAL_DATA", saved.data], ["SHOAL_DATASET_URL", saved.url]] as const) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  }
});

Deno.test("loadDataset on a hash mismatch names URL and hashes, and leaves the cache empty", async () => {
  const files = fashionFiles();
  await using m = await mirror(files);
  const expected = { ...await hashes(files), "train-labels-idx1-ubyte.gz": "ab".repeat(32) };
  const actual = await sha256Hex(files["train-labels-idx1-ubyte.gz"]);
  const url = `${m.baseUrl}train-labels-idx1-ubyte.gz`;
  await assert.rejects(
    loadDataset("fashion_mnist", {
      cacheDir: m.cacheDir,
      systemDir: null,
      baseUrl: m.baseUrl,
      sha256: expected,
    }),
    (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.file, url);
      assert.ok(e.message.includes(`${url} as its SHA-256 must be ${"ab".repeat(32)}: found ${actual}`));
      return true;
    },
  );
  assert.deepEqual(await entries(join(m.cacheDir, "fashion_mnist")), []);
});

Deno.test("loadDataset replaces a cached file whose hash is wrong", async () => {
  const files = fashionFiles();
  await using m = await mirror(files);
  const cached = join(m.cacheDir, "fashion_mnist");
  await Deno.mkdir(cached, { recursive: true });
  await Deno.writeFile(join(cached, "t10k-labels-idx1-ubyte.gz"), idxGz([2], () => 1));
  const log: string[] = [];
  const data = await loadDataset("fashion_mnist", {
    cacheDir: m.cacheDir,
    systemDir: null,
    baseUrl: m.baseUrl,
    sha256: await hashes(files),
    log: (line) => log.push(line),
  });
  assert.deepEqual(Array.from(data.yTest), [9, 8]);
  assert.match(
    log.join("\n"),
    /Ignoring .*t10k-labels-idx1-ubyte\.gz: its SHA-256 is [0-9a-f]{64}, expected/,
  );
  assert.deepEqual(
    await Deno.readFile(join(cached, "t10k-labels-idx1-ubyte.gz")),
    files["t10k-labels-idx1-ubyte.gz"],
  );
});

Deno.test("loadDataset reads the system dir before downloading", async () => {
  const data = await loadFromSystemDir("fashion_mnist", fashionFiles({ train: 4 }));
  assert.deepEqual(data.xTrain.shape, [4, 28, 28]);
  assert.match(data.files[0], /system\/fashion-mnist\/train-labels-idx1-ubyte\.gz$/);
});

Deno.test("loadDataset rejects a label count that differs from the image count, naming both files", async () => {
  await assert.rejects(
    loadFromSystemDir("fashion_mnist", fashionFiles({ train: 3, trainLabels: 2 })),
    (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.match(
        e.message,
        /train-images-idx3-ubyte\.gz with .*train-labels-idx1-ubyte\.gz .*found 3 images and 2 labels/,
      );
      return true;
    },
  );
});

Deno.test("loadDataset rejects images that are not 28x28 and labels outside 0-9", async () => {
  await assert.rejects(
    loadFromSystemDir("fashion_mnist", fashionFiles({ width: 27 })),
    /train-images-idx3-ubyte\.gz as they must have shape \[n, 28, 28\]: found \[3, 28, 27\]/,
  );
  await assert.rejects(
    loadFromSystemDir("fashion_mnist", fashionFiles({ label: (i) => (i === 1 ? 10 : 0) })),
    /train-labels-idx1-ubyte\.gz as each must be a class index 0–9: label 1 is 10/,
  );
});

Deno.test("loadDataset reads MNIST from a downloaded mnist.npz", async () => {
  const images = (n: number) =>
    encodeNpy({ data: Uint8Array.from({ length: n * 784 }, (_, i) => i % 256), shape: [n, 28, 28] });
  const npz = zipSync({
    "x_train.npy": images(3),
    "y_train.npy": encodeNpy({ data: Uint8Array.of(5, 0, 4), shape: [3] }),
    "x_test.npy": images(2),
    "y_test.npy": encodeNpy({ data: Uint8Array.of(7, 2), shape: [2] }),
  });
  await using m = await mirror({ "mnist.npz": npz });
  const data = await loadDataset("mnist", {
    cacheDir: m.cacheDir,
    systemDir: m.systemDir,
    baseUrl: m.baseUrl,
    sha256: { "mnist.npz": await sha256Hex(npz) },
  });
  assert.deepEqual([data.xTrain.shape, data.xTest.shape], [[3, 28, 28], [2, 28, 28]]);
  assert.deepEqual([Array.from(data.yTrain), Array.from(data.yTest)], [[5, 0, 4], [7, 2]]);
  assert.equal(data.xTrain.data[300], 300 % 256);
  assert.deepEqual(await entries(join(m.cacheDir, "mnist")), ["mnist.npz"]);
});

Deno.test("loadDataset rejects an mnist.npz with mismatched or missing arrays", async () => {
  const x = encodeNpy({ data: new Uint8Array(2 * 784), shape: [2, 28, 28] });
  const y = encodeNpy({ data: Uint8Array.of(1), shape: [1] });
  await assert.rejects(
    loadFromSystemDir("mnist", {
      "mnist.npz": zipSync({ "x_train.npy": x, "y_train.npy": y, "x_test.npy": x, "y_test.npy": y }),
    }),
    /mnist\.npz:x_train\.npy with .*mnist\.npz:y_train\.npy .*found 2 images and 1 labels/,
  );
  await assert.rejects(
    loadFromSystemDir("mnist", { "mnist.npz": zipSync({ "x_train.npy": x }) }),
    /must hold an array "y_train": found \[x_train\]/,
  );
});

Deno.test("loadDataset rejects an unknown dataset name, listing the known ones", async () => {
  await assert.rejects(
    loadDataset("cifar10" as DatasetName),
    (e: unknown) =>
      e instanceof RangeError &&
      /must be one of fashion_mnist, mnist: current value is "cifar10"/.test(e.message),
  );
});
