/**
 * Keras 3 `.keras` archives: a zip with three entries, all stored uncompressed, in this order:
 *
 * - `metadata.json`: `{"keras_version": "3.15.1", "date_saved": "2026-11-25@13:22:58"}` (local time,
 *   Python `%Y-%m-%d@%H:%M:%S`);
 * - `config.json`: the serialized model (`{ module, class_name, config, registered_name,
 *   build_config, compile_config }`), parsed here as plain JSON;
 * - `model.weights.h5`: the weights file (layout in `weights_h5.ts`).
 *
 * Keras dates the JSON entries 1980-01-01 00:00 and the weights entry at save time; this writer does
 * the same. Keras can also write `model.weights.npz` and an `assets/` folder; neither is supported.
 *
 * @module
 */

import { unzipSync, type Zippable, zipSync } from "npm:fflate@0.8.3";
import { writeFileAtomic } from "./atomic_write.ts";
import { KerasFileError } from "./errors.ts";
import { checkWeightsForConfig } from "./naming.ts";
import { decodeWeightsH5, encodeWeightsH5, type KerasWeights } from "./weights_h5.ts";

/** The Keras version recorded in archives this module writes, unless the caller gives another. */
export const KERAS_FORMAT_VERSION = "3.15.1";

/** `metadata.json` of a `.keras` archive. Extra keys are kept as they are. */
export interface KerasMetadata {
  readonly keras_version: string;
  /** Save time, local, as Keras writes it: `YYYY-MM-DD@HH:MM:SS`. */
  readonly date_saved: string;
  readonly [key: string]: unknown;
}

/** The content of a `.keras` archive. */
export interface KerasArchive {
  /** Parsed `config.json`. */
  readonly config: unknown;
  readonly metadata: KerasMetadata;
  readonly weights: KerasWeights;
}

/** What {@link writeKerasArchive} writes; metadata defaults to this version and the current time. */
export interface KerasArchiveInput {
  readonly config: unknown;
  readonly metadata?: Partial<KerasMetadata>;
  readonly weights: KerasWeights;
}

const METADATA_ENTRY = "metadata.json";
const CONFIG_ENTRY = "config.json";
const WEIGHTS_ENTRY = "model.weights.h5";
/** DOS dates start in 1980; Python's zipfile uses 1980-01-01 00:00 for entries without a time. */
const ZIP_EPOCH = new Date(1980, 0, 1, 0, 0, 0);

/**
 * Reads a `.keras` archive and checks that its weights have a group for every layer of its config.
 *
 * @throws {KerasFileError} when the file is missing, not a zip, truncated, lacks an entry, has
 * invalid JSON, or its weights do not match its config.
 */
export async function readKerasArchive(source: string | Uint8Array): Promise<KerasArchive> {
  if (typeof source !== "string") return await decodeKerasArchive(source);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(source);
  } catch (error) {
    throw new KerasFileError(
      source,
      `Cannot read Keras archive ${source}: ${(error as Error).message}. ` +
        "Check the path; .keras archives are written by model.save(...).",
      { cause: error },
    );
  }
  return await decodeKerasArchive(bytes, source);
}

/**
 * Decodes the bytes of a `.keras` archive. `file` names the source in error messages.
 *
 * @throws {KerasFileError} as {@link readKerasArchive}.
 */
export async function decodeKerasArchive(bytes: Uint8Array, file = "<bytes>"): Promise<KerasArchive> {
  const entries = unzipArchive(bytes, file);
  const config = parseJsonEntry(entries, CONFIG_ENTRY, file);
  const metadata = parseJsonEntry(entries, METADATA_ENTRY, file) as KerasMetadata;
  const weightsBytes = entries[WEIGHTS_ENTRY];
  if (!weightsBytes) {
    const npz = entries["model.weights.npz"] !== undefined;
    throw new KerasFileError(
      file,
      `Cannot read Keras archive ${file} as it has no ${WEIGHTS_ENTRY} entry` +
        (npz
          ? " (it has model.weights.npz, which is not supported). Save it with weights_format='h5'."
          : listing(entries)),
    );
  }
  const weightsLabel = `${file}!${WEIGHTS_ENTRY}`;
  const weights = await decodeWeightsH5(weightsBytes, weightsLabel);
  checkWeightsForConfig(weights, config, weightsLabel);
  return { config, metadata, weights };
}

/**
 * Encodes a `.keras` archive (entries and zip layout as Keras writes them).
 *
 * @throws {RangeError} when the weights are inconsistent (see `encodeWeightsH5`).
 */
export async function encodeKerasArchive(input: KerasArchiveInput): Promise<Uint8Array> {
  const metadata: KerasMetadata = {
    keras_version: KERAS_FORMAT_VERSION,
    date_saved: formatKerasDate(new Date()),
    ...input.metadata,
  };
  const weights = await encodeWeightsH5(input.weights);
  const text = new TextEncoder();
  const files: Zippable = {
    [METADATA_ENTRY]: [text.encode(JSON.stringify(metadata)), { level: 0, mtime: ZIP_EPOCH }],
    [CONFIG_ENTRY]: [text.encode(JSON.stringify(input.config)), { level: 0, mtime: ZIP_EPOCH }],
    [WEIGHTS_ENTRY]: [weights, { level: 0, mtime: new Date() }],
  };
  return zipSync(files);
}

/**
 * Writes a `.keras` archive to `path` atomically: on failure the previous file at `path` is left
 * untouched and no temporary file remains.
 *
 * @throws {RangeError} as {@link encodeKerasArchive}.
 */
export async function writeKerasArchive(path: string, input: KerasArchiveInput): Promise<void> {
  await writeFileAtomic(path, await encodeKerasArchive(input));
}

/** Formats a date as Keras's `date_saved` (local time): `2026-11-25@13:22:58`. */
export function formatKerasDate(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}@` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

function unzipArchive(bytes: Uint8Array, file: string): Record<string, Uint8Array> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    (bytes[2] === 0x03 || bytes[2] === 0x05) && (bytes[3] === 0x04 || bytes[3] === 0x06);
  if (!isZip) {
    const hdf5 = bytes.length >= 4 && bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 &&
      bytes[3] === 0x46;
    throw new KerasFileError(
      file,
      `Cannot read ${file} as a Keras archive as it is not a zip file (${bytes.length} bytes starting ` +
        `${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ")}, ` +
        "where a zip starts 50 4b 03 04" +
        (hdf5 ? "; an HDF5 file: read it with readWeightsH5" : "") +
        "). Pass a .keras file written by model.save(...).",
    );
  }
  if (!hasEndOfCentralDirectory(bytes)) {
    throw new KerasFileError(
      file,
      `Cannot read Keras archive ${file} as it is truncated: the zip has no end-of-central-directory ` +
        `record (${bytes.length} bytes). The save was interrupted or the copy is incomplete: save the model again.`,
    );
  }
  try {
    return unzipSync(bytes);
  } catch (error) {
    throw new KerasFileError(
      file,
      `Cannot read Keras archive ${file} as the zip is damaged (${(error as Error).message}). ` +
        "Save the model again or restore a complete copy.",
      { cause: error },
    );
  }
}

function parseJsonEntry(entries: Record<string, Uint8Array>, name: string, file: string): unknown {
  const bytes = entries[name];
  if (!bytes) {
    throw new KerasFileError(
      file,
      `Cannot read Keras archive ${file} as it has no ${name} entry${listing(entries)}`,
    );
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new KerasFileError(
      file,
      `Cannot read ${name} in Keras archive ${file} as it is not valid JSON (${(error as Error).message}). ` +
        "Save the model again.",
      { cause: error },
    );
  }
}

function listing(entries: Record<string, Uint8Array>): string {
  const names = Object.keys(entries);
  return `; it has ${names.length ? names.join(", ") : "no entries"}. ` +
    `A .keras archive holds ${METADATA_ENTRY}, ${CONFIG_ENTRY} and ${WEIGHTS_ENTRY}: save the model with model.save(...).`;
}

/** The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes of a zip. */
function hasEndOfCentralDirectory(bytes: Uint8Array): boolean {
  const stop = Math.max(0, bytes.length - 22 - 0xffff);
  for (let i = bytes.length - 22; i >= stop; i--) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 0x05 && bytes[i + 3] === 0x06) {
      return true;
    }
  }
  return false;
}
