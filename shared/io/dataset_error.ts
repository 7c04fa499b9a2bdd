/**
 * Raised when a data file (IDX, NPY, NPZ, CSV, or a downloaded dataset archive) is malformed,
 * truncated, fails its checksum, or does not hold what the caller asked for.
 *
 * The message names the file, what was expected, what was found, and what to do.
 */
export class DatasetError extends Error {
  /** The file path or URL (or a caller-chosen label for in-memory bytes) the error is about. */
  readonly file: string;

  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetError";
    this.file = file;
  }
}
