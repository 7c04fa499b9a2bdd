/**
 * Strict reader for numeric CSV tables (RFC 4180 quoting, comma separator, `\n` or `\r\n` lines),
 * such as feature tables or a Keras `CSVLogger` history.
 */

import { DatasetError } from "./dataset_error.ts";

/** Options of {@link parseCsv}. */
export interface CsvOptions {
  /**
   * The first record holds column names. Without a header, columns are named "0", "1", ….
   * @default true
   */
  header?: boolean;
}

/** A numeric table stored by column. */
export interface CsvTable {
  /** Column names in file order. */
  columns: string[];
  /** Number of data rows (the header excluded). */
  rows: number;
  /** One `Float32Array` of length `rows` per column name. */
  data: Record<string, Float32Array>;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL: Readonly<Record<string, number>> = {
  nan: Number.NaN,
  inf: Infinity,
  "+inf": Infinity,
  "-inf": -Infinity,
  infinity: Infinity,
  "+infinity": Infinity,
  "-infinity": -Infinity,
};

/** Splits CSV text into records of fields; `line` is the 1-based line each record starts on. */
function records(text: string, source: string): { fields: string[]; line: number }[] {
  const out: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === "")) out.push({ fields, line: start });
    fields = [];
    field = "";
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === ",") {
      fields.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      start = line;
    } else {
      field += c;
    }
  }
  if (quoted) {
    throw new DatasetError(
      source,
      `Cannot parse CSV ${source} as every quote must be closed: the quoted field opened on line ` +
        `${start} never ends. Close the quote or remove it.`,
    );
  }
  if (field !== "" || fields.length > 0) endRecord();
  return out;
}

function parseCell(cell: string): number {
  const s = cell.trim();
  if (NUMBER.test(s)) return Number(s);
  const special = SPECIAL[s.toLowerCase()];
  return special === undefined ? Number.NaN : special;
}

function isNumeric(cell: string): boolean {
  const s = cell.trim();
  return NUMBER.test(s) || SPECIAL[s.toLowerCase()] !== undefined;
}

/**
 * Parses a numeric CSV table. Every data cell must be a decimal number (`1`, `-2.5`, `3e-4`) or
 * `nan`/`inf`/`-inf` (any case); blank lines are skipped.
 *
 * @param source File name used in error messages.
 * @throws {DatasetError} naming the line, column and value of the first non-numeric cell, or a
 * row whose number of cells differs from the header's.
 */
export function parseCsv(text: string, source: string, options: CsvOptions = {}): CsvTable {
  const header = options.header ?? true;
  const all = records(text, source);
  if (all.length === 0) {
    throw new DatasetError(
      source,
      `Cannot parse CSV ${source} as it must hold at least one row: found none.`,
    );
  }
  const columns = header ? all[0].fields.map((f) => f.trim()) : all[0].fields.map((_, i) => String(i));
  const duplicate = columns.find((c, i) => columns.indexOf(c) !== i);
  if (duplicate !== undefined) {
    throw new DatasetError(
      source,
      `Cannot parse CSV ${source} as column names must be unique: found "${duplicate}" twice ` +
        `in the header [${columns.join(", ")}]. Rename one of them.`,
    );
  }
  const body = header ? all.slice(1) : all;
  const data: Record<string, Float32Array> = {};
  const arrays = columns.map((c) => (data[c] = new Float32Array(body.length)));
  body.forEach(({ fields, line }, row) => {
    if (fields.length !== columns.length) {
      throw new DatasetError(
        source,
        `Cannot parse CSV ${source} as line ${line} must have ${columns.length} cells like the ` +
          `${header ? "header" : "first row"}: found ${fields.length}. Fix the row's separators.`,
      );
    }
    fields.forEach((cell, col) => {
      if (!isNumeric(cell)) {
        throw new DatasetError(
          source,
          `Cannot parse CSV ${source} as every cell must be a number: line ${line} (data row ` +
            `${row + 1}), column "${columns[col]}" holds ${JSON.stringify(cell)}. ` +
            `Fix or remove the cell (nan and inf are accepted).`,
        );
      }
      arrays[col][row] = parseCell(cell);
    });
  });
  return { columns, rows: body.length, data };
}

/**
 * Copies a table into one row-major `Float32Array` of `rows × columns.length` values.
 *
 * @param columns The columns to take, in order; all of them in table order when omitted.
 * @throws {RangeError} when a named column is absent, listing the available ones.
 */
export function csvToRowMajor(table: CsvTable, columns: readonly string[] = table.columns): Float32Array {
  const arrays = columns.map((c) => {
    const column = table.data[c];
    if (column === undefined) {
      throw new RangeError(
        `Cannot take column "${c}" as it must be one of the table's columns: ` +
          `available are [${table.columns.join(", ")}].`,
      );
    }
    return column;
  });
  const out = new Float32Array(table.rows * columns.length);
  for (let r = 0; r < table.rows; r++) {
    for (let c = 0; c < arrays.length; c++) out[r * arrays.length + c] = arrays[c][r];
  }
  return out;
}
