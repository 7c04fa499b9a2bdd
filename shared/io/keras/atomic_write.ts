/**
 * Atomic file replacement: the bytes go to `<path>.tmp-<random>` in the same directory, are synced to
 * disk, and the temporary file is then renamed over `path`. Readers see either the previous file or
 * the complete new one, never a partial write.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Bytes to write: one buffer, or chunks produced while writing (e.g. a streamed encoder). */
export type AtomicWriteSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes `source` to `path` atomically. On any failure (including a chunk source that throws) the
 * temporary file is removed, the previous file at `path` is left untouched, and the error is
 * rethrown.
 *
 * @example
 * ```ts
 * await writeFileAtomic("model.keras", bytes);
 * ```
 */
export async function writeFileAtomic(path: string, source: AtomicWriteSource): Promise<void> {
  const tmp = join(dirname(path), `${basename(path)}.tmp-${randomSuffix()}`);
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  let closed = false;
  try {
    for await (const chunk of chunksOf(source)) {
      await writeAll(file, chunk);
    }
    await file.sync();
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (error) {
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

async function* chunksOf(source: AtomicWriteSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
  } else {
    yield* source;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await file.write(bytes.subarray(offset));
  }
}

/** Makes the rename durable where the platform allows syncing a directory; harmless elsewhere. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Directories cannot be opened or synced on every platform; the rename itself is already atomic.
  }
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
