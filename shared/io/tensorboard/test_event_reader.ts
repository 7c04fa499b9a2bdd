/**
 * An event-file reader for tests, written apart from the writer: its own CRC32C table, its own
 * TFRecord parsing and a hand-written protobuf wire-format decoder (no protobufjs), so a bug in
 * the writer's framing or schema does not cancel out in the tests.
 *
 * @module
 */

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Bitwise-table CRC32C (Castagnoli, reflected polynomial 0x82F63B78). */
export function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function masked(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + 0xa282ead8) % 0x100000000;
}

/** Records of a TFRecord file; `torn` describes an incomplete last record, if any. */
export interface TFRecordScan {
  records: Uint8Array[];
  torn: string | null;
}

/** Splits `bytes` into records, checking both CRCs; a CRC mismatch throws, a short tail is `torn`. */
export function scanTFRecords(bytes: Uint8Array): TFRecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 12) return { records, torn: `header cut at offset ${at}` };
    const length = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== masked(referenceCrc32c(bytes.subarray(at, at + 8)))) {
      throw new Error(`length CRC mismatch at offset ${at}`);
    }
    if (bytes.length - at < 16 + length) return { records, torn: `record cut at offset ${at}` };
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== masked(referenceCrc32c(data))) {
      throw new Error(`data CRC mismatch at offset ${at}`);
    }
    records.push(data);
    at += 16 + length;
  }
  return { records, torn: null };
}

/** One protobuf field as read from the wire. */
interface WireField {
  field: number;
  varint?: bigint;
  fixed64?: DataView;
  fixed32?: DataView;
  bytes?: Uint8Array;
}

function readFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n;; shift += 7n) {
      const b = bytes[at++];
      if (b === undefined) throw new Error("varint runs past the end");
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) fields.push({ field, varint: varint() });
    else if (wire === 1) {
      fields.push({ field, fixed64: new DataView(bytes.buffer, bytes.byteOffset + at, 8) });
      at += 8;
    } else if (wire === 5) {
      fields.push({ field, fixed32: new DataView(bytes.buffer, bytes.byteOffset + at, 4) });
      at += 4;
    } else if (wire === 2) {
      const length = Number(varint());
      fields.push({ field, bytes: bytes.subarray(at, at + length) });
      at += length;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

const utf8 = new TextDecoder();

/** A decoded `TensorProto` (only the fields the writer may set). */
export interface DecodedTensor {
  dtype: number;
  shape: number[];
  content: Uint8Array;
  floatVal: number[];
  doubleVal: number[];
  stringVal: string[];
}

/** A decoded `Summary.Value`. */
export interface DecodedValue {
  tag: string;
  pluginName: string;
  pluginContent: string;
  dataClass: number;
  tensor: DecodedTensor | null;
}

/** A decoded `Event`. */
export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion: string | null;
  values: DecodedValue[];
}

function decodeTensor(bytes: Uint8Array): DecodedTensor {
  const t: DecodedTensor = {
    dtype: 0,
    shape: [],
    content: new Uint8Array(0),
    floatVal: [],
    doubleVal: [],
    stringVal: [],
  };
  for (const f of readFields(bytes)) {
    if (f.field === 1) t.dtype = Number(f.varint);
    else if (f.field === 2) {
      for (const dim of readFields(f.bytes!)) {
        if (dim.field !== 2) continue;
        const size = readFields(dim.bytes!).find((d) => d.field === 1);
        t.shape.push(size ? Number(size.varint) : 0);
      }
    } else if (f.field === 4) t.content = f.bytes!;
    else if (f.field === 5) {
      const v = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, f.bytes!.byteLength);
      for (let i = 0; i < v.byteLength; i += 4) t.floatVal.push(v.getFloat32(i, true));
    } else if (f.field === 6) {
      const v = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, f.bytes!.byteLength);
      for (let i = 0; i < v.byteLength; i += 8) t.doubleVal.push(v.getFloat64(i, true));
    } else if (f.field === 8) t.stringVal.push(utf8.decode(f.bytes!));
  }
  return t;
}

function decodeValue(bytes: Uint8Array): DecodedValue {
  const v: DecodedValue = { tag: "", pluginName: "", pluginContent: "", dataClass: 0, tensor: null };
  for (const f of readFields(bytes)) {
    if (f.field === 1) v.tag = utf8.decode(f.bytes!);
    else if (f.field === 8) v.tensor = decodeTensor(f.bytes!);
    else if (f.field === 9) {
      for (const m of readFields(f.bytes!)) {
        if (m.field === 4) v.dataClass = Number(m.varint);
        if (m.field !== 1) continue;
        for (const p of readFields(m.bytes!)) {
          if (p.field === 1) v.pluginName = utf8.decode(p.bytes!);
          if (p.field === 2) v.pluginContent = utf8.decode(p.bytes!);
        }
      }
    }
  }
  return v;
}

/** Decodes an `Event` message from wire format. */
export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const e: DecodedEvent = { wallTime: 0, step: 0, fileVersion: null, values: [] };
  for (const f of readFields(bytes)) {
    if (f.field === 1) e.wallTime = f.fixed64!.getFloat64(0, true);
    else if (f.field === 2) e.step = Number(BigInt.asIntN(64, f.varint!));
    else if (f.field === 3) e.fileVersion = utf8.decode(f.bytes!);
    else if (f.field === 5) {
      for (const s of readFields(f.bytes!)) if (s.field === 1) e.values.push(decodeValue(s.bytes!));
    }
  }
  return e;
}

/** Reads and decodes every event of a file; throws if the file ends inside a record. */
export async function readEventFile(path: string): Promise<DecodedEvent[]> {
  const scan = scanTFRecords(await Deno.readFile(path));
  if (scan.torn) throw new Error(`${path} is torn: ${scan.torn}`);
  return scan.records.map(decodeEvent);
}

/** The event files directly in `dir`, sorted by name. */
export async function eventFilesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.startsWith("events.out.tfevents.")) names.push(`${dir}/${entry.name}`);
  }
  return names.sort();
}

/** The float32 value of a scalar tensor (from `tensor_content` or `float_val`). */
export function scalarOf(tensor: DecodedTensor): number {
  if (tensor.content.length === 4) {
    return new DataView(tensor.content.buffer, tensor.content.byteOffset, 4).getFloat32(0, true);
  }
  if (tensor.floatVal.length === 1) return tensor.floatVal[0]!;
  throw new Error(`not a float32 scalar tensor: dtype ${tensor.dtype}, shape [${tensor.shape}]`);
}

/** The `[left, right, count]` rows of a histogram tensor. */
export function histogramRowsOf(tensor: DecodedTensor): [number, number, number][] {
  const v = new DataView(tensor.content.buffer, tensor.content.byteOffset, tensor.content.byteLength);
  const rows: [number, number, number][] = [];
  for (let i = 0; i < v.byteLength; i += 24) {
    rows.push([v.getFloat64(i, true), v.getFloat64(i + 8, true), v.getFloat64(i + 16, true)]);
  }
  return rows;
}
