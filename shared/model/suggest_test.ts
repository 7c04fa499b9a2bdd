import assert from "node:assert/strict";
import { closestName, didYouMean } from "./suggest.ts";

Deno.test("closestName finds prefixes, typos and other spellings of the same name", () => {
  const flags = ["epochs", "batch-size", "learning-rate", "logdir", "verbose"];
  assert.equal(closestName("epoch", flags), "epochs");
  assert.equal(closestName("batchsize", flags), "batch-size");
  assert.equal(closestName("learning_rate", ["learningRate", "patience"]), "learningRate");
  assert.equal(closestName("verbos", flags), "verbose");
  assert.equal(closestName("logdri", flags), "logdir");
  assert.equal(closestName("Dence", ["Dense", "Dropout", "Flatten"]), "Dense");
});

Deno.test("closestName offers nothing for a name unlike every candidate", () => {
  assert.equal(closestName("gpu-memory", ["epochs", "batch-size", "seed"]), undefined);
  assert.equal(closestName("Embedding", ["Dense", "Dropout", "Flatten"]), undefined);
  assert.equal(closestName("", ["a"]), undefined);
});

Deno.test("didYouMean formats the suggestion or returns nothing", () => {
  assert.equal(didYouMean("epoch", ["epochs"], (f) => `--${f}`), " Did you mean --epochs?");
  assert.equal(didYouMean("zzz", ["epochs"]), "");
});
