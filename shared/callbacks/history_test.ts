import assert from "node:assert/strict";
import { History } from "./history.ts";
import { FakeModel, fit } from "./testing_fakes.ts";

Deno.test("History records epoch logs with keys in arrival order and resets per fit", async () => {
  const history = new History();
  await fit(history, new FakeModel(), [{ loss: 1, accuracy: 0.5 }, {
    loss: 0.5,
    accuracy: 0.75,
    val_loss: 0.9,
  }]);
  assert.deepEqual(history.epoch, [0, 1]);
  assert.deepEqual(Object.keys(history.history), ["loss", "accuracy", "val_loss"]);
  assert.deepEqual(history.history, { loss: [1, 0.5], accuracy: [0.5, 0.75], val_loss: [0.9] });
  await fit(history, new FakeModel(), [{ loss: 2 }]);
  assert.deepEqual(history.history, { loss: [2] });
  assert.deepEqual(history.epoch, [0]);
});
