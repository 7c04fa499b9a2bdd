import assert from "node:assert/strict";
import { TerminateOnNaN } from "./terminate_on_nan.ts";
import { FakeModel } from "./testing_fakes.ts";

Deno.test("TerminateOnNaN stops training on a NaN or infinite batch loss", () => {
  for (const loss of [NaN, Infinity, -Infinity]) {
    const printed: string[] = [];
    const model = new FakeModel();
    const cb = new TerminateOnNaN({ print: (m) => printed.push(m) });
    cb.setModel(model);
    cb.onBatchEnd(0, { loss: 0.5 });
    cb.onBatchEnd(1, { accuracy: NaN });
    assert.equal(model.stopTraining, false);
    cb.onBatchEnd(7, { loss });
    assert.equal(model.stopTraining, true);
    assert.deepEqual(printed, ["Batch 7: Invalid loss, terminating training"]);
  }
});

Deno.test("TerminateOnNaN with raiseError throws at once", () => {
  const model = new FakeModel();
  const cb = new TerminateOnNaN({ raiseError: true });
  cb.setModel(model);
  assert.throws(
    () => cb.onBatchEnd(2, { loss: NaN }),
    /NaN or Inf loss encountered at batch 2. Loss value: nan. Terminating training immediately./,
  );
  assert.equal(model.stopTraining, false);
});
