/**
 * OpenBLAS single-precision matrix multiply through Deno FFI.
 *
 * @module
 */

/** Library paths tried, in order, when {@link OpenBlasOptions.paths} is not given. */
export const DEFAULT_OPENBLAS_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/local/lib/libopenblas.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
];

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
} as const;

/**
 * One row-major `C = alpha * op(A) · op(B) + beta * C`, where `op(A)` is `m×k`, `op(B)` is `k×n` and `C`
 * is `m×n`. The arrays are views: element 0 of each is the matrix's first element.
 */
export interface SgemmArgs {
  /** Rows of `op(A)` and `C`. */
  m: number;
  /** Columns of `op(B)` and `C`. */
  n: number;
  /** Columns of `op(A)`, rows of `op(B)`. */
  k: number;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  /** Use `Aᵀ` (A is stored `k×m`). @default false */
  transA?: boolean;
  /** Use `Bᵀ` (B is stored `n×k`). @default false */
  transB?: boolean;
  /** @default 1 */
  alpha?: number;
  /** @default 0 (C is overwritten) */
  beta?: number;
  /** Row stride of A. @default transA ? m : k */
  lda?: number;
  /** Row stride of B. @default transB ? k : n */
  ldb?: number;
  /** Row stride of C. @default n */
  ldc?: number;
}

/** An opened BLAS library. */
export interface Blas extends Disposable {
  /** The library file that was opened. */
  readonly path: string;
  /** Row-major single-precision GEMM (`cblas_sgemm`). */
  sgemm(args: SgemmArgs): void;
  /** Unloads the library; later calls to {@link Blas.sgemm} are invalid. */
  close(): void;
}

/** Options of {@link openBlas}. */
export interface OpenBlasOptions {
  /** Library files to try, in order. @default DEFAULT_OPENBLAS_PATHS */
  paths?: readonly string[];
  /**
   * BLAS threads (`openblas_set_num_threads`). One per worker process was measured as fast as two.
   * @default 1
   */
  threads?: number;
}

/** What {@link openBlas} found: the library, or why none could be opened. */
export type OpenBlasResult =
  | { readonly blas: Blas; readonly reason?: undefined }
  | { readonly blas: null; readonly reason: string };

/**
 * Opens the first OpenBLAS library of `options.paths` that loads, and sets its thread count.
 * Needs `--allow-ffi`. Returns `{ blas: null, reason }` (never throws) when no library loads, so the
 * caller can fall back to another backend and print the reason.
 */
export function openBlas(options: OpenBlasOptions = {}): OpenBlasResult {
  const paths = options.paths ?? DEFAULT_OPENBLAS_PATHS;
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(
      `Cannot open OpenBLAS as threads must be an integer >= 1: current value is ${threads}`,
    );
  }
  const failures: string[] = [];
  for (const path of paths) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (error) {
      failures.push(`${path}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    lib.symbols.openblas_set_num_threads?.(threads);
    return { blas: wrap(path, lib) };
  }
  return {
    blas: null,
    reason: `no OpenBLAS library could be opened (install Debian libopenblas0-pthread and run with ` +
      `--allow-ffi); tried ${failures.join("; ") || "no paths"}`,
  };
}

function wrap(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>): Blas {
  const sgemm = lib.symbols.cblas_sgemm;
  let open = true;
  const close = () => {
    if (open) {
      open = false;
      lib.close();
    }
  };
  return {
    path,
    sgemm(args) {
      const { m, n, k, a, b, c } = args;
      const transA = args.transA ?? false;
      const transB = args.transB ?? false;
      const lda = args.lda ?? (transA ? m : k);
      const ldb = args.ldb ?? (transB ? k : n);
      const ldc = args.ldc ?? n;
      checkSize("A", a, transA ? k : m, lda, transA ? m : k);
      checkSize("B", b, transB ? n : k, ldb, transB ? k : n);
      checkSize("C", c, m, ldc, n);
      if (m === 0 || n === 0) return;
      const beta = args.beta ?? 0;
      if (k === 0) {
        scale(c, m, n, ldc, beta);
        return;
      }
      sgemm(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        args.alpha ?? 1,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
    close,
    [Symbol.dispose]: close,
  };
}

function checkSize(name: string, view: Float32Array, rows: number, ld: number, cols: number): void {
  if (ld < Math.max(1, cols)) {
    throw new RangeError(
      `Cannot run sgemm as the row stride of ${name} must be >= its ${cols} columns: current value is ${ld}`,
    );
  }
  const needed = rows === 0 ? 0 : (rows - 1) * ld + cols;
  if (view.length < needed) {
    throw new RangeError(
      `Cannot run sgemm as ${name} (${rows}x${cols}, row stride ${ld}) needs ${needed} floats: ` +
        `current length is ${view.length}`,
    );
  }
}

function scale(c: Float32Array, m: number, n: number, ldc: number, beta: number): void {
  for (let i = 0; i < m; i++) {
    const row = c.subarray(i * ldc, i * ldc + n);
    if (beta === 0) row.fill(0);
    else for (let j = 0; j < n; j++) row[j]! *= beta;
  }
}
