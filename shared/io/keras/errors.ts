/**
 * A Keras file (`.keras` archive or `.weights.h5`) cannot be read or written as asked. The message
 * names the file, what is wrong with it, and what to do; `file` is the path (or a label for bytes
 * that came from memory) and `cause` carries the underlying error when there is one.
 */
export class KerasFileError extends Error {
  /** Path of the file concerned, or a label such as `<bytes>` for in-memory data. */
  readonly file: string;

  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KerasFileError";
    this.file = file;
  }
}
