import { Callback, type Logs } from "./callback.ts";
import { pyRepr } from "./python_format.ts";

/** Options of {@link CSVLogger}. */
export interface CSVLoggerOptions {
  /**
   * Field separator: one character.
   * @default {","}
   */
  separator?: string;
  /**
   * Append to an existing file (to continue training) instead of overwriting it.
   * @default {false}
   */
  append?: boolean;
}

/**
 * Streams epoch results to a CSV file (Keras `CSVLogger`), byte for byte as Keras writes it: header
 * `epoch,<sorted log keys>` (with `val_` columns added when the first epoch has none), 0-based epoch,
 * values as Python `repr(float)`, `NA` for a missing key, `\r\n` line ends, minimal quoting. The
 * header is skipped when appending to a non-empty file.
 */
export class CSVLogger extends Callback {
  readonly filename: string;
  readonly separator: string;
  readonly append: boolean;
  #file: Deno.FsFile | null = null;
  #keys: string[] | null = null;
  #headerPending = true;
  readonly #encoder = new TextEncoder();

  constructor(filename: string, options: CSVLoggerOptions = {}) {
    super();
    if (typeof filename !== "string" || filename === "") {
      throw new TypeError(
        `CSVLogger needs a filename: received ${String(filename)}. Pass e.g. "run/log.csv"`,
      );
    }
    this.filename = filename;
    this.separator = options.separator ?? ",";
    if (
      typeof this.separator !== "string" || [...this.separator].length !== 1 || /["\r\n]/.test(this.separator)
    ) {
      throw new RangeError(
        `CSVLogger does not support separator=${JSON.stringify(this.separator)}. ` +
          `Use a single character other than a quote or a line break, e.g. "," or ";"`,
      );
    }
    this.append = options.append ?? false;
  }

  override async onTrainBegin(): Promise<void> {
    this.#close();
    this.#headerPending = true;
    if (this.append) {
      const size = await Deno.stat(this.filename).then((s) => s.size, () => 0);
      this.#headerPending = size === 0;
    }
    this.#file = await Deno.open(this.filename, {
      write: true,
      create: true,
      append: this.append,
      truncate: !this.append,
    });
    this.#keys = null;
  }

  override async onEpochEnd(epoch: number, logs: Logs = {}): Promise<void> {
    if (this.#file === null) {
      throw new Error(
        `CSVLogger for ${this.filename} got an epoch end before train begin: call onTrainBegin first`,
      );
    }
    if (this.#keys === null) {
      const keys = Object.keys(logs).sort();
      if (keys.length > 0 && !keys.some((k) => k.startsWith("val_"))) {
        keys.push(...keys.map((k) => "val_" + k));
      }
      this.#keys = keys;
    }
    let text = "";
    if (this.#headerPending) {
      text += this.#row(["epoch", ...this.#keys]);
      this.#headerPending = false;
    }
    const values = this.#keys.map((k) => {
      const v = logs[k];
      return v === undefined ? "NA" : pyRepr(v);
    });
    text += this.#row([String(epoch), ...values]);
    const bytes = this.#encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += await this.#file.write(bytes.subarray(done));
  }

  override onTrainEnd(): void {
    this.#close();
  }

  #row(fields: string[]): string {
    const quote = (f: string) =>
      f.includes(this.separator) || /["\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f;
    return fields.map(quote).join(this.separator) + "\r\n";
  }

  #close(): void {
    this.#file?.close();
    this.#file = null;
  }
}
