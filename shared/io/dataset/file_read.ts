/**
 * Positioned reads from files, opened per call: a reader holds no open file between reads, so a
 * dataset needs no closing and a worker may hold many of them.
 */
import { DatasetError } from "../dataset_error.ts";

/** Reads exactly `length` bytes at `offset` of an open file; a short file is a {@link DatasetError}. */
export function readAt(file: Deno.FsFile, path: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = file.readSync(out.subarray(done));
    if (n === null || n === 0) {
      throw new DatasetError(
        path,
        `Cannot read bytes ${offset}..${offset + length} of ${path} as the file ends after ${
          offset + done
        } bytes. The file is truncated (or changed while training); write it again.`,
      );
    }
    done += n;
  }
  return out;
}

/** Opens `path` for reading, runs `use`, and closes it; a missing file names the path and the host. */
export function withFile<T>(path: string, use: (file: Deno.FsFile) => T): T {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (cause) {
    throw new DatasetError(
      path,
      `Cannot open ${path} on host ${hostname()}: ${cause instanceof Error ? cause.message : cause}. ` +
        "Check the path, and that the dataset volume is mounted (read-only is enough) on this host.",
      { cause },
    );
  }
  try {
    return use(file);
  } finally {
    file.close();
  }
}

/** This machine's host name, or "unknown" when the process may not read it. */
export function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}
