import assert from "node:assert/strict";
import { ProgbarLogger } from "./progbar_logger.ts";
import { FakeModel, params } from "./testing_fakes.ts";

/** A logger on a fake clock; `at(ms)` moves the clock. */
function setup(verbose: 1 | 2, isTTY: boolean, epochs: number, steps: number) {
  const out: string[] = [];
  let clock = 0;
  const logger = new ProgbarLogger({ write: (t) => out.push(t), isTTY, now: () => clock });
  logger.setModel(new FakeModel());
  logger.setParams(params(epochs, steps, verbose));
  logger.onTrainBegin();
  return { out, logger, at: (ms: number) => (clock = ms) };
}

const EPOCH_LOGS = { accuracy: 0.8312, loss: 0.4721, val_accuracy: 0.84, val_loss: 0.44 };

Deno.test("ProgbarLogger verbose 2 prints one Keras line per epoch", () => {
  const { out, logger, at } = setup(2, false, 50, 797);
  at(0);
  logger.onEpochBegin(0);
  for (let b = 0; b < 797; b++) logger.onBatchEnd(b, { accuracy: 0.8, loss: 0.5 });
  at(5000);
  logger.onTestBegin();
  logger.onTestEnd({ loss: 1 });
  logger.onEpochEnd(0, EPOCH_LOGS);
  assert.deepEqual(out, [
    "Epoch 1/50\n",
    "797/797 - 5s - 6ms/step - accuracy: 0.8312 - loss: 0.4721 - val_accuracy: 0.8400 - val_loss: 0.4400\n",
  ]);
});

Deno.test("ProgbarLogger verbose 2 formats small and negative values as Keras (.4e below 1e-3)", () => {
  const { out, logger, at } = setup(2, false, 1, 12);
  at(0);
  logger.onEpochBegin(0);
  at(30);
  logger.onEpochEnd(0, { loss: 0.0005, delta: -0.5 });
  // One epoch: no "Epoch 1/1" line. 30 ms / 12 steps = 2.5 ms, rounded half to even.
  assert.deepEqual(out, ["12/12 - 0s - 2ms/step - loss: 5.0000e-04 - delta: -5.0000e-01\n"]);
});

Deno.test("ProgbarLogger verbose 1 without a TTY prints only the final bar of each epoch", () => {
  const { out, logger, at } = setup(1, false, 2, 4);
  for (const epoch of [0, 1]) {
    at(0);
    logger.onEpochBegin(epoch);
    for (let b = 0; b < 4; b++) {
      at(1000 + 500 * b);
      logger.onBatchEnd(b, { accuracy: 0.5 + b / 10, loss: 0.7 });
    }
    logger.onEpochEnd(epoch, { accuracy: 0.75, loss: 0.25, val_accuracy: 0.0001, val_loss: 0.3 });
  }
  // Elapsed 2.5 s prints as "2s" (Python rounds half to even); steps after the first took 0.5 s each.
  const line = "4/4 ━━━━━━━━━━━━━━━━━━━━ 2s 500ms/step - accuracy: 0.7500 - loss: 0.2500 - " +
    "val_accuracy: 1.0000e-04 - val_loss: 0.3000\n";
  assert.deepEqual(out, ["Epoch 1/2\n", line, "Epoch 2/2\n", line]);
});

Deno.test("ProgbarLogger verbose 1 on a TTY redraws in place with Keras's colours", () => {
  const { out, logger, at } = setup(1, true, 1, 4);
  at(0);
  logger.onEpochBegin(0);
  at(1000);
  logger.onBatchEnd(0, { accuracy: 0.5, loss: 0.7 });
  at(1010); // within 50 ms of the last redraw: skipped
  logger.onBatchEnd(1, { accuracy: 0.7, loss: 0.5 });
  at(3000);
  logger.onEpochEnd(0, { accuracy: 0.75, loss: 0.25 });
  const first =
    "\r\x1b[1m1/4\x1b[0m \x1b[32m━━━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━━\x1b[0m \x1b[1m3s\x1b[0m 1s/step" +
    " - accuracy: 0.5000 - loss: 0.7000";
  const width = "1/4 ━━━━━━━━━━━━━━━━━━━━ 3s 1s/step - accuracy: 0.5000 - loss: 0.7000".length;
  const last = "\b".repeat(width) + "\r\x1b[1m4/4\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m" +
    " \x1b[1m3s\x1b[0m 667ms/step - accuracy: 0.7500 - loss: 0.2500\n";
  assert.deepEqual(out, [first, last]);
});

Deno.test("ProgbarLogger averages metric values between redraws as Keras's Progbar", () => {
  const { out, logger, at } = setup(1, true, 1, 10);
  at(0);
  logger.onEpochBegin(0);
  at(100);
  logger.onBatchEnd(0, { loss: 1 });
  at(110);
  logger.onBatchEnd(1, { loss: 2 }); // skipped redraw, still averaged
  at(200);
  logger.onBatchEnd(3, { loss: 4 }); // two steps since the last update: weight 2
  assert.match(out.at(-1)!, / - loss: 2\.7500 *$/); // (1 + 2 + 4 * 2) / 4, padded over the longer previous line
});

Deno.test("ProgbarLogger prints a bar for evaluate but stays silent for validation inside fit", () => {
  const out: string[] = [];
  const logger = new ProgbarLogger({ write: (t) => out.push(t), isTTY: false, now: () => 0 });
  logger.setParams(params(1, 313, 1));
  logger.onTestBegin();
  logger.onTestEnd({ loss: 0.5 });
  assert.deepEqual(out, ["313/313 ━━━━━━━━━━━━━━━━━━━━ 0s 0s/step - loss: 0.5000\n"]);
});
