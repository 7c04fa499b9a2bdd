import assert from "node:assert/strict";
import * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import { Input, layers, Model, Sequential, tf } from "../../../mod.ts";
import { Network } from "../network.ts";
import type { CallContext } from "./layer.ts";

function context(): CallContext {
  return { training: false, seed: 1, step: 0, rowOffset: 0, batchStats: [], logits: new Map() };
}

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => ((s = (s * 1103515245 + 12345) % 2147483648) % 2000) / 1000 - 1,
  );
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The layer's weights, deterministic, in its declared order. */
function weightsOf(layer: layers.Layer): tf.Tensor[] {
  return layer.weightSpecs.map((s, i) =>
    tf.tensor(values(s.shape.reduce((a, b) => a * b, 1), i + 1), [...s.shape])
  );
}

Deno.test("LSTM with returnState gives [output, h, c] as tfjs-layers computes them", () => {
  for (const returnSequences of [false, true]) {
    for (const goBackwards of [false, true]) {
      const input = new Input({ shape: [6, 3] });
      const lstm = new layers.LSTM(4, { returnState: true, returnSequences, goBackwards });
      const [out, h, c] = lstm.apply(input);
      assert.deepEqual([out!.shape, h!.shape, c!.shape], [returnSequences ? [6, 4] : [4], [4], [4]]);
      const x = tf.tensor3d(values(2 * 6 * 3, 9), [2, 6, 3]);
      const weights = weightsOf(lstm);
      const ours = lstm.callAll([x], weights).map((t) => t.dataSync());
      const reference = tfjs.layers.lstm({
        units: 4,
        recurrentActivation: "sigmoid",
        returnState: true,
        returnSequences,
        goBackwards,
      });
      const theirs = reference.apply(x) as tf.Tensor[];
      reference.setWeights(weights);
      const expected = (reference.apply(x) as tf.Tensor[]).map((t) => t.dataSync());
      tf.dispose(theirs);
      const label = JSON.stringify({ returnSequences, goBackwards });
      ["output", "h", "c"].forEach((what, i) => {
        const d = maxDiff(ours[i]!, expected[i]!);
        assert.ok(d < 1e-5, `${label} ${what}: ${d}`);
      });
    }
  }
});

Deno.test("GRU and SimpleRNN with returnState give [output, h], h the last step's output", () => {
  for (
    const make of [
      (o: layers.GRUOptions) => new layers.GRU(5, o),
      (o: layers.GRUOptions) => new layers.SimpleRNN(5, o),
    ]
  ) {
    const layer = make({ returnState: true, returnSequences: true });
    const outputs = layer.applyAll(new Input({ shape: [4, 2] }));
    assert.deepEqual(outputs.map((t) => t.shape), [[4, 5], [5]]);
    const [seq, h] = layer.callAll(
      [tf.tensor3d(values(3 * 4 * 2, 4), [3, 4, 2])],
      weightsOf(layer),
    );
    assert.equal(maxDiff(tf.slice(seq!, [0, 3, 0], [3, 1, 5]).dataSync(), h!.dataSync()), 0);
  }
});

Deno.test("A Functional model reads the states, saves them in its config and rebuilds from it", () => {
  const input = new Input({ shape: [5, 3] });
  const [, h, c] = new layers.LSTM(4, { returnState: true }).apply(input);
  const inner = new layers.LSTM(2, { returnState: true, returnSequences: true });
  const [merged, forwardH, , backwardH] = new layers.Bidirectional(inner).apply(input);
  assert.deepEqual(merged!.shape, [5, 4]);
  assert.deepEqual([forwardH!.shape, backwardH!.shape], [[2], [2]]);
  const features = new layers.Concatenate().apply([h!, c!, forwardH!, backwardH!]);
  const output = new layers.Dense(2, { activation: "softmax" }).apply(features);
  const model = new Model({ inputs: input, outputs: [output, c!], seed: 1 });
  const config = model.network.toConfig();
  const concat = (config.config as { layers: { class_name: string; inbound_nodes: { args: unknown }[] }[] })
    .layers
    .find((l) => l.class_name === "Concatenate")!;
  const history = JSON.stringify(concat.inbound_nodes[0]!.args);
  assert.match(history, /"keras_history":\["lstm",0,1\].*"keras_history":\["lstm",0,2\]/);
  assert.match(history, /"keras_history":\["bidirectional",0,1\].*"keras_history":\["bidirectional",0,3\]/);
  assert.deepEqual((config.config as { output_layers: unknown }).output_layers, [["dense", 0, 0], [
    "lstm",
    0,
    2,
  ]]);
  const rebuilt = Network.fromConfig(config);
  rebuilt.params.set(model.network.params);
  assert.deepEqual(rebuilt.toConfig(), config);
  const x = tf.tensor3d(values(2 * 15, 3), [2, 5, 3]);
  const run = (n: Network) =>
    n.forward(
      n.paramLayout.map((e) => tf.tensor(n.params.subarray(e.offset, e.offset + e.size), e.shape)),
      [],
      [x],
      context(),
    ).map((t) => Array.from(t.dataSync()));
  assert.deepEqual(run(rebuilt), run(model.network));
});

Deno.test("A Sequential model refuses a layer with returnState, pointing to the Functional API", () => {
  const model = new Sequential([new layers.LSTM(3, { returnState: true, inputShape: [4, 2] })]);
  assert.throws(
    () => model.network,
    /has 3 outputs \(returnState=true\): all layers in a Sequential model should have a single output tensor.*Functional API/,
  );
});

Deno.test("A config that passes states as a call's initial_state is refused, not run without them", () => {
  const input = new Input({ shape: [5, 3] });
  const [, h] = new layers.GRU(4, { returnState: true }).apply(input);
  const decoder = new layers.GRU(4, { name: "decoder" }).apply(input);
  const model = new Model({ inputs: input, outputs: new layers.Concatenate().apply([h!, decoder]) });
  const config = model.network.toConfig() as {
    config: { layers: { name: string; inbound_nodes: unknown[] }[] };
  };
  const entry = config.config.layers.find((l) => l.name === "decoder")!;
  const args = (entry.inbound_nodes[0] as { args: unknown[] }).args;
  entry.inbound_nodes[0] = {
    args,
    kwargs: {
      initial_state: [{
        class_name: "__keras_tensor__",
        config: { shape: [null, 4], keras_history: ["gru", 0, 1] },
      }],
    },
  };
  assert.throws(
    () => Network.fromConfig(config),
    /layer "decoder" is called with a tensor as its initial_state argument, which Shoal does not support yet/,
  );
});
