/**
 * Trains the benchmark's conv net ({@link convNet}) on Fashion-MNIST with the default backend and
 * prints the test accuracy and the wall time, as one JSON line at the end.
 *
 * Run: `deno run -A tools/train_conv.ts [--epochs 4] [--batch 64] [--samples 60000]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { z } from "npm:zod@4.6.7";
import { loadDataset } from "../shared/io/datasets.ts";
import { initBackend, optimizers } from "../shared/model/mod.ts";
import { convNet } from "./conv_net.ts";

const Args = z.object({
  epochs: z.coerce.number().int().positive(),
  batch: z.coerce.number().int().positive(),
  samples: z.coerce.number().int().positive().max(60000),
});
const { values } = parseArgs({
  options: {
    epochs: { type: "string", default: "4" },
    batch: { type: "string", default: "64" },
    samples: { type: "string", default: "60000" },
  },
});
const args = Args.parse(values);

function images(data: Uint8Array, n: number): { data: Float32Array; shape: number[] } {
  const out = new Float32Array(n * 784);
  for (let i = 0; i < out.length; i++) out[i] = data[i]! / 255;
  return { data: out, shape: [n, 28, 28, 1] };
}

const backend = await initBackend("auto");
const ds = await loadDataset("fashion_mnist");
const x = images(ds.xTrain.data, args.samples);
const y = { data: Float32Array.from(ds.yTrain.subarray(0, args.samples)), shape: [args.samples] };
const xTest = images(ds.xTest.data, ds.yTest.length);
const yTest = { data: Float32Array.from(ds.yTest), shape: [ds.yTest.length] };
const model = convNet(1);
model.compile({
  optimizer: new optimizers.Adam(),
  loss: "sparse_categorical_crossentropy",
  metrics: ["accuracy"],
});
const start = performance.now();
await model.fit(x, y, { epochs: args.epochs, batchSize: args.batch, verbose: 2 });
const trainSeconds = (performance.now() - start) / 1000;
const [loss, accuracy] = await model.evaluate(xTest, yTest, { batchSize: 256, verbose: 0 });
console.log(JSON.stringify({
  backend: backend.name,
  epochs: args.epochs,
  batch: args.batch,
  samples: args.samples,
  test_loss: loss,
  test_accuracy: accuracy,
  train_seconds: Math.round(trainSeconds),
  total_seconds: Math.round((performance.now() - start) / 1000),
}));
