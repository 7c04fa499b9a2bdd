/** Keras weight initializers, seeded, producing plain Float32Arrays. */
import { Rng } from "./random.ts";

export type InitializerName =
  | "glorot_uniform"
  | "glorot_normal"
  | "he_uniform"
  | "he_normal"
  | "zeros"
  | "ones"
  | "random_normal"
  | "random_uniform"
  | "orthogonal"
  /** An LSTM bias with Keras's `unit_forget_bias`: zeros, and ones for the forget gate's quarter. */
  | "unit_forget_bias";

const CLASS_NAMES: Record<InitializerName, string> = {
  glorot_uniform: "GlorotUniform",
  glorot_normal: "GlorotNormal",
  he_uniform: "HeUniform",
  he_normal: "HeNormal",
  zeros: "Zeros",
  ones: "Ones",
  random_normal: "RandomNormal",
  random_uniform: "RandomUniform",
  orthogonal: "Orthogonal",
  unit_forget_bias: "Zeros",
};

/** Keras's string aliases (`"uniform"` is Embedding's default). */
const ALIASES: Record<string, InitializerName> = {
  uniform: "random_uniform",
  normal: "random_normal",
  zero: "zeros",
  one: "ones",
};

export const INITIALIZER_NAMES = (Object.keys(CLASS_NAMES) as InitializerName[]).filter((n) =>
  n !== "unit_forget_bias"
);

/** Resolves an initializer given by snake_case name or Keras class name. */
export function resolveInitializer(name: string): InitializerName {
  if (name in CLASS_NAMES && name !== "unit_forget_bias") return name as InitializerName;
  if (Object.hasOwn(ALIASES, name)) return ALIASES[name]!;
  const byClass = INITIALIZER_NAMES.find((k) => CLASS_NAMES[k] === name);
  if (byClass) return byClass;
  throw new TypeError(`Unknown initializer: '${name}'. Use one of: ${INITIALIZER_NAMES.join(", ")}`);
}

/** The Keras 3 serialized form of an initializer. */
export function initializerConfig(name: InitializerName): Record<string, unknown> {
  const config: Record<string, unknown> = name === "zeros" || name === "ones" || name === "unit_forget_bias"
    ? {}
    : { seed: null };
  if (name === "orthogonal") Object.assign(config, { gain: 1 });
  if (name === "random_normal") Object.assign(config, { mean: 0, stddev: 0.05 });
  if (name === "random_uniform") Object.assign(config, { minval: -0.05, maxval: 0.05 });
  return { module: "keras.initializers", class_name: CLASS_NAMES[name], config, registered_name: null };
}

function fans(shape: readonly number[]): [number, number] {
  if (shape.length < 2) return [shape[0] ?? 1, shape[0] ?? 1];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** Draws initial values for a weight of `shape`. */
export function initialize(name: InitializerName, shape: readonly number[], rng: Rng): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const [fanIn, fanOut] = fans(shape);
  const truncNormal = (std: number) => {
    for (let i = 0; i < size; i++) {
      let v: number;
      do v = rng.normal(); while (Math.abs(v) > 2);
      out[i] = v * std;
    }
  };
  const uniform = (limit: number) => {
    for (let i = 0; i < size; i++) out[i] = (rng.uniform() * 2 - 1) * limit;
  };
  switch (name) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "glorot_uniform":
      uniform(Math.sqrt(6 / (fanIn + fanOut)));
      break;
    case "he_uniform":
      uniform(Math.sqrt(6 / fanIn));
      break;
    // Keras draws variance-scaling normals from a truncated normal, std corrected by 0.8796.
    case "glorot_normal":
      truncNormal(Math.sqrt(2 / (fanIn + fanOut)) / 0.87962566103423978);
      break;
    case "he_normal":
      truncNormal(Math.sqrt(2 / fanIn) / 0.87962566103423978);
      break;
    case "random_normal":
      for (let i = 0; i < size; i++) out[i] = rng.normal() * 0.05;
      break;
    case "random_uniform":
      uniform(0.05);
      break;
    case "orthogonal":
      orthogonal(shape, rng, out);
      break;
    case "unit_forget_bias": {
      const units = size / 4;
      out.fill(1, units, 2 * units);
      break;
    }
  }
  return out;
}

/**
 * Keras `Orthogonal` (gain 1): the Q factor of a normal matrix of shape (rows = product of all but the
 * last axis, cols = last axis), with orthonormal columns (or rows, when there are fewer rows than
 * columns). Gram-Schmidt on the columns of the taller orientation.
 */
function orthogonal(shape: readonly number[], rng: Rng, out: Float32Array): void {
  const cols = shape[shape.length - 1] ?? 1;
  const rows = out.length / cols;
  const [n, m] = rows >= cols ? [rows, cols] : [cols, rows];
  // m vectors of length n, orthonormalized in turn.
  const q = Array.from({ length: m }, () => Float64Array.from({ length: n }, () => rng.normal()));
  for (let j = 0; j < m; j++) {
    const v = q[j]!;
    for (let k = 0; k < j; k++) {
      const u = q[k]!;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += u[i]! * v[i]!;
      for (let i = 0; i < n; i++) v[i]! -= dot * u[i]!;
    }
    let squares = 0;
    for (let i = 0; i < n; i++) squares += v[i]! * v[i]!;
    const norm = Math.sqrt(squares) || 1;
    for (let i = 0; i < n; i++) v[i]! /= norm;
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = rows >= cols ? q[c]![r]! : q[r]![c]!;
  }
}
