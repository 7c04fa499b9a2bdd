import assert from "node:assert/strict";
import { Callback, type Logs } from "./callback.ts";
import { CallbackList } from "./callback_list.ts";
import { History } from "./history.ts";
import { ProgbarLogger } from "./progbar_logger.ts";
import { ReduceLROnPlateau } from "./reduce_lr_on_plateau.ts";
import { FakeModel, params } from "./testing_fakes.ts";

/** Records hook calls; its epoch end resolves only after a delay, to prove hooks are awaited. */
class Recorder extends Callback {
  constructor(readonly name: string, readonly calls: string[]) {
    super();
  }
  override onTrainBegin(): void {
    this.calls.push(`${this.name}:trainBegin:${this.params.epochs}`);
  }
  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.calls.push(`${this.name}:epochEnd:${epoch}:${Object.keys(logs ?? {}).join("|")}`);
  }
}

Deno.test("CallbackList calls hooks in order, awaiting each, and adds History and ProgbarLogger", async () => {
  const calls: string[] = [];
  const out: string[] = [];
  const model = new FakeModel(0.5);
  const list = new CallbackList(
    [new Recorder("a", calls), new ReduceLROnPlateau({ patience: 0, factor: 0.5 }), new Recorder("b", calls)],
    { model, params: params(2, 1, 2), progbar: { write: (t) => out.push(t), isTTY: false, now: () => 0 } },
  );
  assert.equal(list.callbacks.length, 5);
  assert.ok(list.callbacks[3] instanceof History);
  assert.ok(list.callbacks[4] instanceof ProgbarLogger);
  assert.equal(list.callbacks[1]!.model, model);
  await list.onTrainBegin();
  for (const [epoch, val_loss] of [1, 2].entries()) {
    await list.onEpochBegin(epoch);
    await list.onBatchEnd(0, { loss: 1 });
    await list.onEpochEnd(epoch, Object.freeze({ loss: 1, val_loss }));
  }
  await list.onTrainEnd();
  assert.deepEqual(calls, [
    "a:trainBegin:2",
    "b:trainBegin:2",
    "a:epochEnd:0:loss|val_loss",
    "b:epochEnd:0:loss|val_loss|learning_rate",
    "a:epochEnd:1:loss|val_loss",
    "b:epochEnd:1:loss|val_loss|learning_rate",
  ]);
  assert.deepEqual(list.history?.history, { loss: [1, 1], val_loss: [1, 2], learning_rate: [0.5, 0.5] });
  assert.deepEqual(list.epochLogs, { loss: 1, val_loss: 2, learning_rate: 0.5 });
  assert.equal(model.optimizer.learningRate, 0.25);
  assert.deepEqual(out, [
    "Epoch 1/2\n",
    "1/1 - 0s - 0s/step - loss: 1.0000 - val_loss: 1.0000 - learning_rate: 0.5000\n",
    "Epoch 2/2\n",
    "1/1 - 0s - 0s/step - loss: 1.0000 - val_loss: 2.0000 - learning_rate: 0.5000\n",
  ]);
});

Deno.test("CallbackList keeps the user's History and ProgbarLogger and adds no progbar at verbose 0", () => {
  const history = new History();
  const progbar = new ProgbarLogger({ write: () => {}, isTTY: false });
  const own = new CallbackList([progbar, history], { model: new FakeModel(), params: params(1, 1, 1) });
  assert.deepEqual(own.callbacks, [progbar, history]);
  assert.equal(own.history, history);
  const quiet = new CallbackList([], { model: new FakeModel(), params: params(1, 1, 0) });
  assert.equal(quiet.callbacks.length, 1);
  assert.ok(quiet.callbacks[0] instanceof History);
  const bare = new CallbackList([], { model: new FakeModel(), params: params(), addHistory: false });
  assert.equal(bare.history, null);
  assert.equal(bare.callbacks.length, 0);
});

Deno.test("CallbackList propagates a callback's error", async () => {
  class Failing extends Callback {
    override onEpochBegin(): Promise<void> {
      return Promise.reject(new Error("disk full"));
    }
  }
  const list = new CallbackList([new Failing()], { model: new FakeModel(), params: params() });
  await assert.rejects(() => list.onEpochBegin(0), /disk full/);
});
