import assert from "node:assert/strict";
import { join } from "node:path";
import { CSVLogger } from "./csv_logger.ts";
import { FakeModel, fit } from "./testing_fakes.ts";

Deno.test("CSVLogger writes sorted keys, 0-based epochs and Python float text with CRLF as Keras", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "log.csv");
    await fit(new CSVLogger(path), new FakeModel(), [
      { loss: 0.5, accuracy: 0.25, val_loss: 0.1 + 0.2, val_accuracy: 1 },
      { loss: NaN, accuracy: 1e-5, val_loss: 3, val_accuracy: 0.125 },
    ]);
    assert.equal(
      await Deno.readTextFile(path),
      "epoch,accuracy,loss,val_accuracy,val_loss\r\n" +
        "0,0.25,0.5,1.0,0.30000000000000004\r\n" +
        "1,1e-05,nan,0.125,3.0\r\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CSVLogger adds val_ columns with NA when the first epoch has no validation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "log.csv");
    await fit(new CSVLogger(path, { separator: ";" }), new FakeModel(), [{ loss: 0.1 }, {
      loss: 0.2,
      val_loss: 0.3,
    }]);
    assert.equal(await Deno.readTextFile(path), "epoch;loss;val_loss\r\n0;0.1;NA\r\n1;0.2;0.3\r\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CSVLogger overwrites by default and appends without a second header", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "log.csv");
    await Deno.writeTextFile(path, "old contents\n");
    const logger = new CSVLogger(path);
    await fit(logger, new FakeModel(), [{ loss: 1, val_loss: 2 }]);
    assert.equal(await Deno.readTextFile(path), "epoch,loss,val_loss\r\n0,1.0,2.0\r\n");
    const appender = new CSVLogger(path, { append: true });
    await fit(appender, new FakeModel(), [{ loss: 3, val_loss: 4 }]);
    assert.equal(await Deno.readTextFile(path), "epoch,loss,val_loss\r\n0,1.0,2.0\r\n0,3.0,4.0\r\n");
    const fresh = join(dir, "fresh.csv");
    await fit(new CSVLogger(fresh, { append: true }), new FakeModel(), [{ loss: 3 }]);
    assert.equal(await Deno.readTextFile(fresh), "epoch,loss,val_loss\r\n0,3.0,NA\r\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CSVLogger quotes fields holding the separator", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "log.csv");
    await fit(new CSVLogger(path), new FakeModel(), [{ "a,b": 1, val_x: 2 }]);
    assert.equal(await Deno.readTextFile(path), 'epoch,"a,b",val_x\r\n0,1.0,2.0\r\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CSVLogger rejects bad options in the constructor", () => {
  assert.throws(() => new CSVLogger("x.csv", { separator: ";;" }), {
    name: "RangeError",
    message:
      'CSVLogger does not support separator=";;". Use a single character other than a quote or a line ' +
      'break, e.g. "," or ";"',
  });
  assert.throws(() => new CSVLogger(""), TypeError);
});
