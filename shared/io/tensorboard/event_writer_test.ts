import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { EVENT_FILE_VERSION, EventFileWriter } from "./event_writer.ts";
import {
  decodeEvent,
  eventFilesIn,
  histogramRowsOf,
  readEventFile,
  referenceCrc32c,
  scalarOf,
  scanTFRecords,
} from "./test_event_reader.ts";
import { crc32cOf, encodeTFRecord, maskedCrc32c } from "./tfrecord.ts";

const CHECK_INPUT = new TextEncoder().encode("123456789");

Deno.test("CRC32C of the check string '123456789' is 0xE3069283 (library and reference)", () => {
  assert.equal(crc32cOf(CHECK_INPUT), 0xe3069283);
  assert.equal(referenceCrc32c(CHECK_INPUT), 0xe3069283);
  // masked = rotr15(0xE3069283) + 0xa282ead8 mod 2^32
  assert.equal(maskedCrc32c(CHECK_INPUT), (((0xe3069283 >>> 15) | (0xe3069283 << 17)) + 0xa282ead8) >>> 0);
});

Deno.test("encodeTFRecord frames data that the reference reader accepts", () => {
  const payload = new Uint8Array(300).map((_, i) => i * 7);
  const framed = encodeTFRecord(payload);
  assert.equal(framed.length, 316);
  const scan = scanTFRecords(framed);
  assert.equal(scan.torn, null);
  assert.deepEqual(scan.records, [payload]);
  const corrupted = framed.slice();
  corrupted[100]! ^= 1;
  assert.throws(() => scanTFRecords(corrupted), /data CRC mismatch at offset 0/);
});

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-tb-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("EventFileWriter writes file_version first, then scalars and histograms with valid CRCs", async () => {
  await withTempDir(async (dir) => {
    const writer = await EventFileWriter.open(join(dir, "run"), { now: () => 1_700_000_000_500 });
    assert.match(
      basename(writer.path),
      new RegExp(`^events\\.out\\.tfevents\\.1700000000\\.${Deno.hostname()}\\.${Deno.pid}\\.0\\.v2$`),
    );
    writer.addScalar("epoch_loss", 0.5, 0);
    writer.addScalar("epoch_loss", 0.25, 1);
    const data = Float32Array.from({ length: 77 }, (_, i) => (i % 11) - 5);
    writer.addHistogram("dense/kernel/histogram", data, 1);
    assert.ok(writer.pendingBytes > 0);
    await writer.close();

    const events = await readEventFile(writer.path);
    assert.equal(events.length, 4);
    assert.equal(events[0]!.fileVersion, EVENT_FILE_VERSION);
    assert.equal(events[0]!.wallTime, 1_700_000_000.5);
    const scalars = events.slice(1, 3).map((e) => [e.values[0]!.tag, e.step, scalarOf(e.values[0]!.tensor!)]);
    assert.deepEqual(scalars, [["epoch_loss", 0, 0.5], ["epoch_loss", 1, 0.25]]);
    assert.equal(events[1]!.values[0]!.pluginName, "scalars");
    assert.equal(events[1]!.values[0]!.dataClass, 1);

    const hist = events[3]!.values[0]!;
    assert.equal(hist.pluginName, "histograms");
    assert.deepEqual(hist.tensor!.shape, [30, 3]);
    assert.equal(hist.tensor!.dtype, 2);
    const rows = histogramRowsOf(hist.tensor!);
    assert.equal(rows.reduce((s, r) => s + r[2], 0), 77);
    assert.equal(rows[0]![0], -5);
    assert.equal(rows[29]![1], 5);
  });
});

Deno.test("the reference reader detects a torn final record", async () => {
  await withTempDir(async (dir) => {
    const writer = await EventFileWriter.open(dir);
    writer.addScalar("a", 1, 1);
    writer.addScalar("b", 2, 2);
    await writer.close();
    const bytes = await Deno.readFile(writer.path);
    assert.equal(scanTFRecords(bytes).torn, null);
    for (const cut of [1, 5, 20]) {
      const scan = scanTFRecords(bytes.subarray(0, bytes.length - cut));
      assert.equal(scan.records.length, 2, `cut ${cut}`);
      assert.match(scan.torn ?? "", /cut at offset/);
    }
    await Deno.writeFile(writer.path, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(readEventFile(writer.path), /is torn: record cut/);
  });
});

Deno.test("writers opened in the same second in one directory get distinct files", async () => {
  await withTempDir(async (dir) => {
    const now = () => 1_700_000_000_000;
    await using a = await EventFileWriter.open(dir, { now });
    await using b = await EventFileWriter.open(dir, { now });
    assert.notEqual(a.path, b.path);
    assert.match(b.path, /\.1\.v2$/);
    assert.deepEqual((await eventFilesIn(dir)).length, 2);
  });
});

Deno.test("flushes append in order; close is idempotent; adding after close throws", async () => {
  await withTempDir(async (dir) => {
    const writer = await EventFileWriter.open(dir, { maxPendingBytes: 64 });
    const flushes: Promise<void>[] = [];
    for (let step = 1; step <= 20; step++) {
      writer.addScalar("batch_loss", step / 10, step);
      if (writer.shouldFlush) flushes.push(writer.flush());
    }
    assert.ok(flushes.length >= 5, `expected several size-triggered flushes, got ${flushes.length}`);
    await Promise.all([...flushes, writer.close(), writer.close()]);
    const steps = (await readEventFile(writer.path)).slice(1).map((e) => e.step);
    assert.deepEqual(steps, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.throws(() => writer.addScalar("x", 1, 1), /writer is closed/);
  });
});

Deno.test("shouldFlush turns true after flushMillis with pending events", async () => {
  await withTempDir(async (dir) => {
    let t = 0;
    const writer = await EventFileWriter.open(dir, { now: () => t, flushMillis: 1000 });
    assert.equal(writer.shouldFlush, false);
    writer.addScalar("x", 1, 1);
    t = 999;
    assert.equal(writer.shouldFlush, false);
    t = 1000;
    assert.equal(writer.shouldFlush, true);
    await writer.close();
    assert.equal(decodeEvent(scanTFRecords(await Deno.readFile(writer.path)).records[1]!).step, 1);
  });
});

Deno.test("EventFileWriter.open rejects negative options with the offending value", async () => {
  await assert.rejects(
    EventFileWriter.open("unused", { flushMillis: -1 }),
    /flushMillis must be .* current value is -1/,
  );
});
