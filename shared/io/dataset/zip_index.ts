/**
 * The member table of a zip archive (the central directory, with Zip64), read from the end of the
 * file without reading the members: enough to find where each stored member's bytes start.
 */
import { DatasetError } from "../dataset_error.ts";
import { readAt } from "./file_read.ts";

/** One member of a zip archive. */
export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset in the archive of the member's first data byte. */
  dataOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;

function bad(path: string, what: string): never {
  throw new DatasetError(
    path,
    `Cannot read zip archive ${path} as ${what}. The file is truncated or not an .npz written by ` +
      "numpy.savez; write it again.",
  );
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`zip offset ${v} is too large`);
  return Number(v);
}

/** Finds the end-of-central-directory record: where the directory starts and how many entries it has. */
function directory(file: Deno.FsFile, path: string, size: number): { offset: number; entries: number } {
  if (size < 22) bad(path, `it must end with a 22-byte directory record: the file has ${size} bytes`);
  const tailLength = Math.min(size, 22 + MAX16 + 20);
  const tail = readAt(file, path, size - tailLength, tailLength);
  const view = new DataView(tail.buffer);
  let at = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) bad(path, "its end-of-directory record is missing");
  let entries = view.getUint16(at + 10, true);
  let offset = view.getUint32(at + 16, true);
  if (
    (entries === MAX16 || offset === MAX32) && at >= 20 && view.getUint32(at - 20, true) === ZIP64_LOCATOR
  ) {
    const z64At = u64(view, at - 12);
    const z64 = new DataView(readAt(file, path, z64At, 56).buffer);
    if (z64.getUint32(0, true) !== ZIP64_EOCD) bad(path, "its Zip64 directory record is damaged");
    entries = u64(z64, 32);
    offset = u64(z64, 48);
  }
  if (offset > size) bad(path, `its directory starts at byte ${offset}, past the end (${size} bytes)`);
  return { offset, entries };
}

/**
 * Lists the members of the zip archive open as `file` (of `size` bytes) with where their data starts.
 *
 * @throws {DatasetError} when the directory or a member's local header is missing or damaged, or a
 * member's data runs past the end of the file.
 */
export function readZipIndex(file: Deno.FsFile, path: string, size: number): ZipMember[] {
  const dir = directory(file, path, size);
  const bytes = readAt(file, path, dir.offset, Math.min(size - dir.offset, dir.entries * (46 + MAX16 * 3)));
  const view = new DataView(bytes.buffer);
  const members: ZipMember[] = [];
  let at = 0;
  for (let k = 0; k < dir.entries; k++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) {
      bad(path, `directory entry ${k} of ${dir.entries} is damaged`);
    }
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size32 = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // Zip64 extra field: the 8-byte values of the fields that hold 0xFFFFFFFF, in this order.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength;) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (id === 1) {
        let f = e + 4;
        if (size32 === MAX32) (size32 = u64(view, f)), f += 8;
        if (compressedSize === MAX32) (compressedSize = u64(view, f)), f += 8;
        if (local === MAX32) local = u64(view, f);
      }
      e += 4 + length;
    }
    at += 46 + nameLength + extraLength + commentLength;
    if (local + 30 > size) bad(path, `member ${name} starts at byte ${local}, past the end (${size} bytes)`);
    const header = new DataView(readAt(file, path, local, 30).buffer);
    if (header.getUint32(0, true) !== LOCAL) bad(path, `the local header of member ${name} is damaged`);
    const dataOffset = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
    if (dataOffset + compressedSize > size) {
      bad(
        path,
        `member ${name} needs bytes up to ${dataOffset + compressedSize}: the file has ${size} bytes`,
      );
    }
    members.push({ name, method, compressedSize, size: size32, dataOffset });
  }
  return members;
}
