import assert from "node:assert/strict";
import { DatasetError } from "./dataset_error.ts";
import { csvToRowMajor, parseCsv } from "./csv.ts";

Deno.test("parseCsv reads a numeric table with a header into float32 columns", () => {
  const table = parseCsv(
    'epoch,loss,"val loss"\r\n0,0.5,6e-1\r\n1, .25 ,-inf\r\n\r\n2,nan,+1\r\n',
    "log.csv",
  );
  assert.deepEqual(table.columns, ["epoch", "loss", "val loss"]);
  assert.equal(table.rows, 3);
  assert.deepEqual(Array.from(table.data.epoch), [0, 1, 2]);
  assert.deepEqual(Array.from(table.data.loss), [0.5, 0.25, Number.NaN]);
  assert.deepEqual(Array.from(table.data["val loss"]), [Math.fround(0.6), -Infinity, 1]);
  assert.ok(table.data.loss instanceof Float32Array);
});

Deno.test("parseCsv without a header names columns by index; quoted fields may hold commas and newlines", () => {
  const table = parseCsv("1,2\n3,4", "plain.csv", { header: false });
  assert.deepEqual(table.columns, ["0", "1"]);
  assert.deepEqual(Array.from(table.data["1"]), [2, 4]);
  const quoted = parseCsv('"a,b","c\n""d"""\n"1",2\n', "q.csv");
  assert.deepEqual(quoted.columns, ["a,b", 'c\n"d"']);
  assert.deepEqual(Array.from(quoted.data["a,b"]), [1]);
});

Deno.test("csvToRowMajor lays out rows contiguously and rejects unknown columns", () => {
  const table = parseCsv("x,y,z\n1,2,3\n4,5,6\n", "t.csv");
  assert.deepEqual(Array.from(csvToRowMajor(table)), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(csvToRowMajor(table, ["z", "x"])), [3, 1, 6, 4]);
  assert.throws(() => csvToRowMajor(table, ["w"]), /column "w".*available are \[x, y, z\]/);
});

Deno.test("parseCsv names line, column and value of a non-numeric cell", () => {
  for (const cell of ["abc", "", "1.2.3", "0x10", "1e"]) {
    assert.throws(() => parseCsv(`a,b\n1,2\n3,${cell}\n`, "bad.csv"), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.file, "bad.csv");
      assert.match(
        e.message,
        new RegExp(`line 3 \\(data row 2\\), column "b" holds ${JSON.stringify(cell)}`),
      );
      return true;
    });
  }
});

Deno.test("parseCsv rejects ragged rows, duplicate names, unclosed quotes and empty input", () => {
  assert.throws(
    () => parseCsv("a,b\n1,2\n3\n", "r.csv"),
    /line 3 must have 2 cells like the header: found 1/,
  );
  assert.throws(() => parseCsv("a,a\n1,2\n", "d.csv"), /found "a" twice/);
  assert.throws(() => parseCsv('a\n"1\n', "u.csv"), /quoted field opened on line 2 never ends/);
  assert.throws(() => parseCsv("\n\n", "e.csv"), /at least one row: found none/);
});
