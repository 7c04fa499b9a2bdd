/** Keras activations by name, as tensor functions. */
import { tf } from "./tf.ts";

export type ActivationName = "relu" | "sigmoid" | "softmax" | "tanh" | "linear" | "elu" | "gelu" | "silu";

const ACTIVATIONS: Record<ActivationName, (x: tf.Tensor) => tf.Tensor> = {
  relu: (x) => tf.relu(x),
  sigmoid: (x) => tf.sigmoid(x),
  softmax: (x) => tf.softmax(x),
  tanh: (x) => tf.tanh(x),
  linear: (x) => x,
  elu: (x) => tf.elu(x),
  // Keras 3 default: the exact form, x * Φ(x).
  gelu: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))),
  // Keras's `silu` (also `swish`): x * sigmoid(x).
  silu: (x) => tf.mul(x, tf.sigmoid(x)),
};

/** Other names Keras accepts for an activation. */
const ALIASES: Record<string, ActivationName> = { swish: "silu" };

/** The valid activation names, for error messages. */
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];

/** Resolves an activation name (or undefined/null → linear); unknown names list the valid ones. */
export function resolveActivation(name: string | null | undefined): ActivationName {
  const key = name === null || name === undefined
    ? "linear"
    : Object.hasOwn(ALIASES, name)
    ? ALIASES[name]!
    : name;
  if (!(key in ACTIVATIONS)) {
    throw new TypeError(
      `Unknown activation: '${key}'. Use one of: ${ACTIVATION_NAMES.join(", ")}`,
    );
  }
  return key as ActivationName;
}

/** Applies a named activation. */
export function applyActivation(name: ActivationName, x: tf.Tensor): tf.Tensor {
  return ACTIVATIONS[name](x);
}
