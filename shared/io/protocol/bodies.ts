/**
 * The binary bodies of the protocol's messages (messages.ts), each encoder beside its decoder. The
 * same bodies travel on the data plane and through NATS.
 *
 * | message | body |
 * | --- | --- |
 * | weights | params ‖ state, f32 |
 * | `data` request | every input array then y, f32, rows first (in parts of at most `partFloats`) |
 * | `train` request | the slice's row indices, i32 |
 * | `train` reply | the gradient in the reply's encoding, zero padding to 8 bytes, then per BatchNorm layer its mean and variance, f32, then per sparse gradient its looked-up rows, i32, and their squares, f32 |
 * | `predict` reply | the outputs, f32, rows first |
 * | slice-exchange part | the slice's part, f32 |
 * | slice-exchange gathered | every slice's part in slice order, f32 (all of one length) |
 *
 * Decoders check every length against the header and throw a `RangeError` naming both.
 *
 * @module
 */
import { type GradSquares, gradSquaresProblem, type SliceResult } from "../../model/mod.ts";
import { asFloat32, type Body } from "../nats/codec.ts";
import { decodeF32, encodeF32 } from "../nats/float_encoding.ts";
import type { WeightsHeader, WorkReply } from "./messages.ts";

/** The element types a dataset travels and is held in: bytes stay bytes (a quarter of float32's size). */
export type ShippedDtype = "float32" | "uint8";

/** One array of a dataset, rows first, as {@link encodeDataset} ships it and a worker holds it. */
export interface ShippableArray {
  data: Float32Array | Uint8Array;
  shape: number[];
}

/** The inputs (one per model input) and labels of a dataset, as shipped. */
export interface DatasetArrays {
  inputs: ShippableArray[];
  y: ShippableArray | null;
  length: number;
}

// --- weights -----------------------------------------------------------------------------------

/** The header and body of weights `version`. */
export function encodeWeights(
  job: string,
  version: number,
  params: Float32Array,
  state: Float32Array,
): { header: WeightsHeader; body: Body } {
  return {
    header: { job, version, paramsLength: params.length, stateLength: state.length },
    body: [params, state],
  };
}

/** Params and state (views of `body`). */
export function decodeWeights(
  header: WeightsHeader,
  body: Uint8Array,
): { version: number; params: Float32Array; state: Float32Array } {
  const all = asFloat32(body);
  if (all.length !== header.paramsLength + header.stateLength) {
    throw new RangeError(
      `Cannot use weights version ${header.version} as the body holds ${all.length} floats: the header says ${
        header.paramsLength + header.stateLength
      }`,
    );
  }
  return {
    version: header.version,
    params: all.subarray(0, header.paramsLength),
    state: all.subarray(header.paramsLength),
  };
}

// --- datasets ----------------------------------------------------------------------------------

/** A dataset ready to ship: its content hash (SHA-256 of the shapes, types and bytes), shapes and bytes. */
export interface ShippedDataset {
  hash: string;
  inputs: number[][];
  y: number[] | null;
  /** Each input's element type, then y's. */
  dtypes: ShippedDtype[];
  body: Uint8Array;
}

/** Where each array starts in a dataset body, and the body's length: arrays end to end, each 4-aligned. */
function datasetLayout(
  shapes: number[][],
  dtypes: readonly ShippedDtype[],
): { starts: number[]; bytes: number } {
  const starts: number[] = [];
  let bytes = 0;
  shapes.forEach((shape, i) => {
    starts.push(bytes);
    const size = shape.reduce((p, d) => p * d, 1) * (dtypes[i] === "uint8" ? 1 : 4);
    bytes += Math.ceil(size / 4) * 4;
  });
  return { starts, bytes };
}

/**
 * Lays every input array, then y, end to end (each 4-aligned), and hashes them with their shapes and
 * types. Byte arrays travel and stay as bytes; a worker makes float32 rows of them batch by batch.
 */
export async function encodeDataset(
  data: { inputs: ShippableArray[]; y: ShippableArray | null; length: number },
): Promise<ShippedDataset> {
  const arrays = [...data.inputs, ...(data.y ? [data.y] : [])];
  const dtypes = arrays.map((a): ShippedDtype => a.data instanceof Uint8Array ? "uint8" : "float32");
  const shapes = arrays.map((a) => a.shape);
  const layout = datasetLayout(shapes, dtypes);
  const body = new Uint8Array(layout.bytes);
  arrays.forEach((a, i) => {
    const bytes = a.data instanceof Uint8Array
      ? a.data
      : new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    body.set(bytes, layout.starts[i]!);
  });
  const shapeBytes = new TextEncoder().encode(JSON.stringify({ shapes, dtypes }));
  const hashInput = new Uint8Array(shapeBytes.length + body.byteLength);
  hashInput.set(shapeBytes);
  hashInput.set(body, shapeBytes.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", hashInput));
  return {
    hash: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
    inputs: data.inputs.map((a) => a.shape),
    y: data.y ? data.y.shape : null,
    dtypes,
    body,
  };
}

/**
 * Splits a dataset body (every input, then y, rows first, each 4-aligned; `dtypes` as shipped, float32
 * when not given) into arrays of the given shapes (views of `body`, which must be 4-aligned). Throws a
 * `RangeError` when the body does not hold exactly those shapes.
 */
export function decodeDataset(
  body: Uint8Array,
  inputs: number[][],
  y: number[] | null,
  dtypes?: readonly ShippedDtype[],
): DatasetArrays {
  const shapes = y ? [...inputs, y] : inputs;
  const types = dtypes ?? shapes.map((): ShippedDtype => "float32");
  if (types.length !== shapes.length) {
    throw new RangeError(
      `Cannot read the dataset as it names ${types.length} element types for its ${shapes.length} arrays`,
    );
  }
  const layout = datasetLayout(shapes, types);
  if (layout.bytes !== body.byteLength) {
    throw new RangeError(
      `Cannot read the dataset as its shapes ${JSON.stringify(shapes)} (${
        types.join(", ")
      }) need ${layout.bytes} bytes: the body holds ${body.byteLength}`,
    );
  }
  const arrays = shapes.map((shape, i): ShippableArray => {
    const size = shape.reduce((p, d) => p * d, 1);
    const at = body.byteOffset + layout.starts[i]!;
    const data = types[i] === "uint8"
      ? new Uint8Array(body.buffer, at, size)
      : new Float32Array(body.buffer, at, size);
    return { data, shape };
  });
  const length = inputs[0]?.[0] ?? 0;
  for (const a of arrays) {
    if (a.shape[0] !== length) {
      throw new RangeError(
        `Cannot read the dataset as its arrays have ${a.shape[0]} and ${length} rows: they must match`,
      );
    }
  }
  return { inputs: arrays.slice(0, inputs.length), y: y ? arrays[inputs.length]! : null, length };
}

// --- train ------------------------------------------------------------------------------------

/** A train request's body: the slice's row indices. */
export function encodeIndices(indices: Int32Array): Body {
  return indices;
}

/** The row indices of a train request (a copy: the body's buffer may be reused). */
export function decodeIndices(body: Uint8Array): Int32Array {
  if (body.byteLength % 4 !== 0) {
    throw new RangeError(
      `Cannot read row indices from ${body.byteLength} bytes: the length must be a multiple of 4`,
    );
  }
  const out = new Int32Array(body.byteLength / 4);
  new Uint8Array(out.buffer).set(body);
  return out;
}

/** The reply header of a train slice, without the body description that {@link encodeTrainReply} adds. */
export type TrainReplyBase = Omit<
  Extract<WorkReply, { kind: "train" }>,
  "count" | "lossSum" | "metricSums" | "regLoss" | "gradLength" | "batchStats" | "gradSquares"
>;

/**
 * A train reply: the slice's sums in the header; its gradient (in `base.encoding`), BatchNorm
 * statistics and sparse gradients' squares in the body.
 */
export function encodeTrainReply(
  base: TrainReplyBase,
  result: SliceResult,
  grads: Float32Array = result.grads,
): { header: Extract<WorkReply, { kind: "train" }>; body: Body } {
  const gradBytes = encodeF32(grads, base.encoding);
  const padding = new Uint8Array(Math.ceil(gradBytes.length / 8) * 8 - gradBytes.length);
  return {
    header: {
      ...base,
      count: result.count,
      lossSum: result.lossSum,
      metricSums: result.metricSums,
      regLoss: result.regLoss,
      gradLength: grads.length,
      batchStats: result.batchStats.map((s) => ({ layer: s.layer, channels: s.mean.length })),
      ...(result.gradSquares
        ? {
          gradSquares: result.gradSquares.map((s) => ({
            offset: s.offset,
            size: s.size,
            rowSize: s.rowSize,
            rows: s.rows.length,
          })),
        }
        : {}),
    },
    body: [
      gradBytes,
      padding,
      ...result.batchStats.flatMap((s) => [s.mean, s.variance]),
      ...(result.gradSquares ?? []).flatMap((s) => [s.rows, s.values]),
    ],
  };
}

/**
 * The slice result of a train reply, or why its body cannot be one: a gradient of another length
 * than `paramCount` (a ring reply: than its shard), or a body that does not hold what the header
 * describes, or sparse squares whose rows are not ascending ids of their table, or whose table does
 * not lie within the model. A ring reply's `grads` are its reduced shard.
 */
export function decodeTrainReply(
  header: Extract<WorkReply, { kind: "train" }>,
  body: Uint8Array,
  paramCount: number,
): SliceResult | string {
  const bytesPer = header.encoding === "bf16" ? 2 : 4;
  const gradBytes = header.gradLength * bytesPer;
  const statsStart = Math.ceil(gradBytes / 8) * 8;
  const statFloats = header.batchStats.reduce((n, s) => n + 2 * s.channels, 0);
  const squareFloats = (header.gradSquares ?? []).reduce((n, s) => n + s.rows * (1 + s.rowSize), 0);
  const expected = header.shard ? header.shard.end - header.shard.start : paramCount;
  if (header.gradLength !== expected || body.length !== statsStart + (statFloats + squareFloats) * 4) {
    return `its gradient has ${header.gradLength} values (${body.length} body bytes), ${
      header.shard ? `its shard ${header.shard.start}..${header.shard.end}` : "the model"
    } has ${expected}`;
  }
  const grads = decodeF32(body.subarray(0, gradBytes), header.encoding);
  const stats = asFloat32(body.subarray(statsStart));
  let o = 0;
  const batchStats = header.batchStats.map((s) => {
    const mean = stats.slice(o, o + s.channels);
    const variance = stats.slice(o + s.channels, o + 2 * s.channels);
    o += 2 * s.channels;
    return { layer: s.layer, mean, variance };
  });
  const gradSquares: GradSquares[] = [];
  for (const s of header.gradSquares ?? []) {
    if (s.offset + s.size > paramCount) {
      return `its squares at offset ${s.offset} cover ${s.size} values, past the model's ${paramCount}`;
    }
    const rows = new Int32Array(
      stats.buffer.slice(stats.byteOffset + 4 * o, stats.byteOffset + 4 * (o + s.rows)),
    );
    o += s.rows;
    const values = stats.slice(o, o + s.rows * s.rowSize);
    o += s.rows * s.rowSize;
    const sq = { offset: s.offset, size: s.size, rowSize: s.rowSize, rows, values };
    const problem = gradSquaresProblem(sq);
    if (problem) return `its squares at offset ${s.offset}: ${problem}`;
    gradSquares.push(sq);
  }
  return {
    count: header.count,
    grads,
    lossSum: header.lossSum,
    metricSums: header.metricSums,
    regLoss: header.regLoss,
    batchStats,
    ...(header.gradSquares ? { gradSquares } : {}),
  };
}

// --- predict ----------------------------------------------------------------------------------

/** The outputs of a predict reply, or why the body does not hold `header.length` floats. */
export function decodePredict(
  header: Extract<WorkReply, { kind: "predict" }>,
  body: Uint8Array,
): Float32Array | string {
  if (body.length !== header.length * 4) {
    return `its body holds ${body.length} bytes for ${header.length} outputs`;
  }
  return asFloat32(body.slice());
}

// --- slice exchange ---------------------------------------------------------------------------

/** Every slice's part laid end to end, in slice order; throws a `RangeError` when lengths differ. */
export function encodeGathered(parts: readonly Float32Array[]): Float32Array {
  const length = parts[0]?.length ?? 0;
  const out = new Float32Array(parts.length * length);
  parts.forEach((part, k) => {
    if (part.length !== length) {
      throw new RangeError(
        `Cannot gather the slice exchange as slice ${k} sent ${part.length} values and slice 0 ${length}: ` +
          "the workers run different models",
      );
    }
    out.set(part, k * length);
  });
  return out;
}

/** The parts of a gathered body, one per slice (copies). */
export function decodeGathered(body: Uint8Array, slices: number): Float32Array[] {
  const all = asFloat32(body);
  if (all.length % slices !== 0) {
    throw new RangeError(`Cannot split ${all.length} gathered values into ${slices} equal parts`);
  }
  const length = all.length / slices;
  return Array.from({ length: slices }, (_, k) => all.slice(k * length, (k + 1) * length));
}
