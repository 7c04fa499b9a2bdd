/**
 * Checksummed, atomic file download: the body streams into a temporary file beside the
 * destination while being hashed, and is renamed into place only when its SHA-256 matches.
 * A failed, aborted or mismatching download leaves no file behind.
 */

import { createHash } from "node:crypto";
import { DatasetError } from "./dataset_error.ts";

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected SHA-256 of the body, as 64 hex digits (any case). */
  sha256: string;
  /**
   * The `fetch` to use.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
  /** Aborts the request and the transfer; the abort reason is rethrown as is. */
  signal?: AbortSignal;
}

/** Lowercase hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function fetchBody(url: string, options: DownloadOptions): Promise<ReadableStream<Uint8Array>> {
  const fetchFn = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await fetchFn(url, { signal: options.signal });
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new DatasetError(
      url,
      `Cannot download ${url}: the request failed (${cause instanceof Error ? cause.message : cause}). ` +
        `Check the network, or point SHOAL_DATASET_URL at a reachable mirror.`,
      { cause },
    );
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new DatasetError(
      url,
      `Cannot download ${url} as the server must answer 200 with a body: found ${response.status} ` +
        `${response.statusText}. Check the URL, or point SHOAL_DATASET_URL at a mirror that has the file.`,
    );
  }
  return response.body;
}

/**
 * Downloads `url` to `dest`, verifying its SHA-256. The parent directory must exist.
 *
 * @throws {DatasetError} on a network error, a non-2xx answer, or a checksum mismatch (naming the
 * URL, the expected and the actual hash). The abort reason when `signal` aborts.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions): Promise<void> {
  const expected = options.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new TypeError(
      `Cannot verify ${url} as sha256 must be 64 hex digits: current value is "${options.sha256}".`,
    );
  }
  const body = await fetchBody(url, options);
  const temp = `${dest}.${crypto.randomUUID()}.part`;
  const hash = createHash("sha256");
  let received = 0;
  try {
    {
      using file = await Deno.open(temp, { write: true, createNew: true });
      for await (const chunk of body) {
        hash.update(chunk);
        received += chunk.length;
        for (let offset = 0; offset < chunk.length;) offset += await file.write(chunk.subarray(offset));
      }
      await file.sync();
    }
    const actual = hash.digest("hex");
    if (actual !== expected) {
      throw new DatasetError(
        url,
        `Cannot use the download of ${url} as its SHA-256 must be ${expected}: found ${actual}. ` +
          `The transfer was corrupted or the mirror serves another file; retry, or check the mirror.`,
      );
    }
    await Deno.rename(temp, dest);
  } catch (error) {
    await removeIfPresent(temp);
    if (options.signal?.aborted) throw options.signal.reason;
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      url,
      `Cannot download ${url} to ${dest}: the transfer failed after ${received} bytes ` +
        `(${error instanceof Error ? error.message : error}). Nothing was written; retry.`,
      { cause: error },
    );
  }
}
