/**
 * The squares of sparse gradients, held sparse. Keras's TensorFlow optimizers square an Embedding's
 * gradient (IndexedSlices) slice by slice before the duplicates are summed; what they need of a step
 * is, per looked-up row, the sum of its slices' squares. Only the rows a batch looked up have any, so a
 * table's squares are those rows and their sums, never a table-sized array: what a worker sends and
 * the coordinator reduces grows with the batch, not with the vocabulary.
 *
 * @module
 */

/**
 * The squares of one sparse gradient (a trainable Embedding table's): for each looked-up row, the sum
 * of the squares of its gradient slices, element by element. Rows not listed have no slices (their
 * squares are zeros).
 */
export interface GradSquares {
  /** Where the table starts in the params layout. */
  offset: number;
  /** The table's element count: its rows × {@link rowSize}. */
  size: number;
  /** Elements per row (the Embedding's output dimension). */
  rowSize: number;
  /** The looked-up rows, ascending, each once. */
  rows: Int32Array;
  /** `rows.length × rowSize` values: row `rows[j]`'s squares at `j × rowSize`. */
  values: Float32Array;
}

/**
 * Why `sq` is not a well-formed {@link GradSquares} (row size, lengths, rows ascending within the
 * table), or null when it is. Does not look at where the table lies in params.
 */
export function gradSquaresProblem(sq: GradSquares): string | null {
  const { offset, size, rowSize, rows, values } = sq;
  if (!(Number.isInteger(rowSize) && rowSize > 0)) return `row size ${rowSize} is not a positive integer`;
  if (!(Number.isInteger(size) && size >= 0 && size % rowSize === 0)) {
    return `table size ${size} is not a multiple of its row size ${rowSize}`;
  }
  if (values.length !== rows.length * rowSize) {
    return `${values.length} values do not fill ${rows.length} rows of ${rowSize}`;
  }
  const tableRows = size / rowSize;
  for (let j = 0; j < rows.length; j++) {
    const row = rows[j]!;
    if (!(row >= 0 && row < tableRows)) {
      return `row ${row} lies outside the ${tableRows} rows of the table at offset ${offset}`;
    }
    if (j > 0 && row <= rows[j - 1]!) {
      return `row ${row} follows row ${rows[j - 1]} (rows must ascend, each once)`;
    }
  }
  return null;
}

/** The distinct values of `values`, ascending (sorts `values` itself). */
export function ascendingUnique(values: Int32Array): Int32Array {
  values.sort();
  let unique = 0;
  for (let i = 0; i < values.length; i++) {
    if (i === 0 || values[i] !== values[unique - 1]) values[unique++] = values[i]!;
  }
  return values.slice(0, unique);
}

/**
 * The ascending union of ascending row lists, and for each list the index in the union of each of
 * its rows.
 */
export function unionRows(lists: readonly Int32Array[]): { rows: Int32Array; positions: Int32Array[] } {
  if (lists.length === 1) {
    return { rows: lists[0]!, positions: [Int32Array.from({ length: lists[0]!.length }, (_, j) => j)] };
  }
  const all = new Int32Array(lists.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of lists) {
    all.set(l, at);
    at += l.length;
  }
  const rows = ascendingUnique(all);
  const positions = lists.map((l) => {
    const out = new Int32Array(l.length);
    let i = 0;
    for (let j = 0; j < l.length; j++) {
      while (rows[i]! < l[j]!) i++;
      out[j] = i;
    }
    return out;
  });
  return { rows, positions };
}

/**
 * Per row of the union of `parts`' rows, `Σ weights[k] · parts[k]` (weights default to 1), added in
 * part order into float32, from zero. A row a part lacks adds nothing, so this is, value for value,
 * the same float32 sum over dense table-sized arrays with zeros on the rows not looked up.
 */
export function sumRowSquares(
  parts: readonly { rows: Int32Array; values: Float32Array }[],
  rowSize: number,
  weights?: readonly number[],
): { rows: Int32Array; values: Float32Array } {
  const { rows, positions } = unionRows(parts.map((p) => p.rows));
  const values = new Float32Array(rows.length * rowSize);
  parts.forEach((part, k) => {
    const w = weights?.[k] ?? 1;
    const at = positions[k]!;
    for (let j = 0; j < at.length; j++) {
      const dst = at[j]! * rowSize, src = j * rowSize;
      for (let c = 0; c < rowSize; c++) values[dst + c] = values[dst + c]! + w * part.values[src + c]!;
    }
  });
  return { rows, values };
}

/** The table-sized array of `sq`'s squares: zeros on the rows it does not list. */
export function denseSquares(sq: GradSquares): Float32Array {
  const out = new Float32Array(sq.size);
  scatterSquares(sq, out);
  return out;
}

/** Writes `sq`'s rows into `out`, a view of the table (rows it does not list are left as they are). */
export function scatterSquares(sq: GradSquares, out: Float32Array): void {
  for (let j = 0; j < sq.rows.length; j++) {
    out.set(sq.values.subarray(j * sq.rowSize, (j + 1) * sq.rowSize), sq.rows[j]! * sq.rowSize);
  }
}
