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
  | "random_uniform";

const CLASS_NAMES: Record<InitializerName, string> = {
  glorot_uniform: "GlorotUniform",
  glorot_normal: "GlorotNormal",
  he_uniform: "HeUniform",
  he_normal: "HeNormal",
  zeros: "Zeros",
  ones: "Ones",
  random_normal: "RandomNormal",
  random_uniform: "RandomUniform",
};

export const INITIALIZER_NAMES = Object.keys(CLASS_NAMES) as InitializerName[];

/** Resolves an initializer given by snake_case name or Keras class name. */
export function resolveInitializer(name: string): InitializerName {
  if (name in CLASS_NAMES) return name as InitializerName;
  const byClass = INITIALIZER_NAMES.find((k) => CLASS_NAMES[k] === name);
  if (byClass) return byClass;
  throw new TypeError(`Unknown initializer: '${name}'. Use one of: ${INITIALIZER_NAMES.join(", ")}`);
}

/** The Keras 3 serialized form of an initializer. */
export function initializerConfig(name: InitializerName): Record<string, unknown> {
  const config: Record<string, unknown> = name === "zeros" || name === "ones" ? {} : { seed: null };
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
  }
  return out;
}
