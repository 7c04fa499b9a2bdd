/**
 * Rows of CSV files, read by offset: one pass over each file records where every record starts
 * (8 bytes per row), then rows are read and parsed on demand. Columns are chosen by name per input.
 */
import { parseCsv } from "../csv.ts";
import { DatasetError } from "../dataset_error.ts";
import { readAt, withFile } from "./file_read.ts";
import { checkIndices, checkRange, type ElementSpec, type Rows, type RowSource } from "./rows.ts";

/** Which columns feed the model: a list of names per input, and the label column(s). */
export interface CsvColumns {
  inputs: string[][];
  y: string[] | null;
}

interface CsvFile {
  path: string;
  /** Byte offset of each data record, then the end of the last one. */
  offsets: Float64Array;
  start: number;
  /** Position of each wanted column in the file's records. */
  picks: number[];
  width: number;
}

const CHUNK = 1 << 20;

/** Scans a file for record starts (quotes respected, blank lines skipped). */
function index(path: string): Float64Array {
  return withFile(path, (file) => {
    const size = file.statSync().size;
    let offsets = new Float64Array(1024);
    let count = 0;
    let quoted = false;
    let atStart = true;
    for (let base = 0; base < size; base += CHUNK) {
      const chunk = readAt(file, path, base, Math.min(CHUNK, size - base));
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (atStart && c !== 0x0a && c !== 0x0d) {
          if (count + 1 >= offsets.length) {
            const grown = new Float64Array(offsets.length * 2);
            grown.set(offsets);
            offsets = grown;
          }
          offsets[count++] = base + i;
          atStart = false;
        }
        if (c === 0x22) quoted = !quoted;
        else if (!quoted && (c === 0x0a || c === 0x0d)) atStart = true;
      }
    }
    offsets[count] = size;
    return offsets.slice(0, count + 1);
  });
}

function text(file: Deno.FsFile, path: string, from: number, to: number): string {
  let t = new TextDecoder().decode(readAt(file, path, from, to - from));
  if (from === 0 && t.charCodeAt(0) === 0xfeff) t = t.slice(1);
  return t;
}

/** The rows of CSV files with a header line, as one dataset, file after file. */
export class CsvSource implements RowSource {
  readonly length: number;
  readonly element: ElementSpec;
  readonly #files: CsvFile[] = [];
  readonly #columns: CsvColumns;

  /**
   * Indexes every file (one read pass) and checks each header holds the wanted columns.
   *
   * @param expected Row counts a coordinator saw, checked so that a worker reads the same rows.
   * @throws {DatasetError} for a missing file, an empty file, or a header without a wanted column.
   */
  constructor(paths: readonly string[], columns: CsvColumns, expected?: readonly number[]) {
    this.#columns = columns;
    const wanted = [...columns.inputs.flat(), ...(columns.y ?? [])];
    let start = 0;
    paths.forEach((path, f) => {
      const offsets = index(path);
      if (offsets.length < 2) {
        throw new DatasetError(
          path,
          `Cannot read CSV ${path} as it must start with a header line: the file is empty.`,
        );
      }
      const header = withFile(path, (file) => text(file, path, offsets[0]!, offsets[1]!));
      const names = parseCsv(header, path).columns;
      const picks = wanted.map((name) => {
        const at = names.indexOf(name);
        if (at < 0) {
          throw new DatasetError(
            path,
            `Cannot read column "${name}" from ${path} as its header has no such column: it has [${
              names.join(", ")
            }]. Fix the column spec or the header.`,
          );
        }
        return at;
      });
      const rows = offsets.length - 2;
      if (expected && expected[f] !== rows) {
        throw new DatasetError(
          path,
          `Cannot use ${path} as it has ${rows} rows here but ${
            expected[f]
          } where the dataset was opened first: ` +
            "the file changed. Every process must see the same files; do not rewrite them while training.",
        );
      }
      this.#files.push({ path, offsets: offsets.subarray(1), start, picks, width: names.length });
      start += rows;
    });
    this.length = start;
    this.element = {
      inputs: columns.inputs.map((c) => [c.length]),
      y: columns.y === null ? null : columns.y.length === 1 ? [] : [columns.y.length],
    };
  }

  get files(): { path: string; rows: number }[] {
    return this.#files.map((f) => ({ path: f.path, rows: f.offsets.length - 1 }));
  }

  get columns(): CsvColumns {
    return this.#columns;
  }

  #fileOf(row: number): CsvFile {
    let lo = 0, hi = this.#files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#files[mid]!.start <= row) lo = mid;
      else hi = mid - 1;
    }
    return this.#files[lo]!;
  }

  /** Parses rows `from..to` of one file into `out` (one flat row of wanted values each) at row `at`. */
  #parse(file: CsvFile, from: number, to: number, out: Float32Array, at: number): void {
    const body = withFile(file.path, (f) => text(f, file.path, file.offsets[from]!, file.offsets[to]!));
    const line = `line ${from + 2}${to - from > 1 ? `–${to + 1}` : ""}`;
    const table = parseCsv(body, `${file.path} (${line})`, { header: false });
    if (table.columns.length !== file.width) {
      throw new DatasetError(
        file.path,
        `Cannot parse CSV ${file.path} (${line}) as every row must have ${file.width} cells like the header: ` +
          `found ${table.columns.length}. Fix the row's separators.`,
      );
    }
    const w = file.picks.length;
    file.picks.forEach((p, k) => {
      const column = table.data[String(p)]!;
      for (let r = 0; r < table.rows; r++) out[(at + r) * w + k] = column[r]!;
    });
  }

  #split(flat: Float32Array, n: number): Rows {
    const w = this.#files[0]?.picks.length ?? 0;
    let k = 0;
    const take = (names: string[], shape: number[]) => {
      const data = new Float32Array(n * names.length);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < names.length; c++) data[r * names.length + c] = flat[r * w + k + c]!;
      }
      k += names.length;
      return { data, shape: [n, ...shape] };
    };
    const inputs = this.#columns.inputs.map((c, i) => take(c, this.element.inputs[i]!));
    return { inputs, y: this.#columns.y === null ? null : take(this.#columns.y, this.element.y!) };
  }

  gather(indices: ArrayLike<number>): Rows {
    checkIndices(indices, this.length);
    const w = this.#files[0]?.picks.length ?? 0;
    const flat = new Float32Array(indices.length * w);
    for (let i = 0; i < indices.length; i++) {
      const file = this.#fileOf(indices[i]!);
      const local = indices[i]! - file.start;
      this.#parse(file, local, local + 1, flat, i);
    }
    return this.#split(flat, indices.length);
  }

  range(start: number, end: number): Rows {
    checkRange(start, end, this.length);
    const w = this.#files[0]?.picks.length ?? 0;
    const flat = new Float32Array((end - start) * w);
    for (let row = start; row < end;) {
      const file = this.#fileOf(row);
      const to = Math.min(end, file.start + file.offsets.length - 1);
      this.#parse(file, row - file.start, to - file.start, flat, row - start);
      row = to;
    }
    return this.#split(flat, end - start);
  }
}
