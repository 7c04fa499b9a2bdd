/** Rows as readers hand them out, and the random-access reader every dataset kind implements. */

/** `shape[0]` rows of `shape.slice(1)` float32 values each, row-major. */
export interface RowArray {
  data: Float32Array;
  shape: number[];
}

/** Some rows of every input (one array per model input) and of the labels. */
export interface Rows {
  inputs: RowArray[];
  y: RowArray | null;
}

/** The shape of one row of each input and of the labels (`[]` for a scalar per row). */
export interface ElementSpec {
  inputs: number[][];
  y: number[] | null;
}

/**
 * Random access to the rows of a dataset, synchronously (training computes synchronously anyway).
 * Readers hold no open file between calls: they need no closing.
 */
export interface RowSource {
  readonly length: number;
  readonly element: ElementSpec;
  /** Copies the rows at `indices` (in that order) into new arrays; an index out of range is a `RangeError`. */
  gather(indices: ArrayLike<number>): Rows;
  /** Rows `start..end` (exclusive). */
  range(start: number, end: number): Rows;
}

/** Values per row of an array whose row has `shape`. */
export function rowSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Throws a `RangeError` unless every index is a row of a dataset of `length` rows. */
export function checkIndices(indices: ArrayLike<number>, length: number): void {
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    if (!(Number.isInteger(r) && r >= 0 && r < length)) {
      throw new RangeError(`Cannot read row ${r} as the dataset has ${length} rows (0..${length - 1})`);
    }
  }
}

/** Throws a `RangeError` unless `start..end` lies within `0..length`. */
export function checkRange(start: number, end: number, length: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= length)) {
    throw new RangeError(`Cannot read rows ${start}..${end} as the dataset has ${length} rows`);
  }
}

/** Rows held in memory, as a {@link RowSource}. */
export class MemoryRows implements RowSource {
  readonly length: number;
  readonly element: ElementSpec;

  constructor(readonly rows: Rows) {
    this.length = rows.inputs[0]?.shape[0] ?? rows.y?.shape[0] ?? 0;
    this.element = { inputs: rows.inputs.map((a) => a.shape.slice(1)), y: rows.y?.shape.slice(1) ?? null };
  }

  gather(indices: ArrayLike<number>): Rows {
    checkIndices(indices, this.length);
    const take = (a: RowArray): RowArray => {
      const r = rowSize(a.shape.slice(1));
      const out = new Float32Array(indices.length * r);
      for (let i = 0; i < indices.length; i++) {
        const s = indices[i]! * r;
        out.set(a.data.subarray(s, s + r), i * r);
      }
      return { data: out, shape: [indices.length, ...a.shape.slice(1)] };
    };
    return { inputs: this.rows.inputs.map(take), y: this.rows.y ? take(this.rows.y) : null };
  }

  range(start: number, end: number): Rows {
    checkRange(start, end, this.length);
    const cut = (a: RowArray): RowArray => {
      const r = rowSize(a.shape.slice(1));
      return { data: a.data.subarray(start * r, end * r), shape: [end - start, ...a.shape.slice(1)] };
    };
    return { inputs: this.rows.inputs.map(cut), y: this.rows.y ? cut(this.rows.y) : null };
  }
}
