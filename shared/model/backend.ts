/** Chooses the TensorFlow.js backend that runs the math, once per process unless asked again. */
import { tf } from "./tf.ts";
import { type BackendRequest, type BackendSelection, selectBackend } from "./backends/select.ts";

export type BackendName = BackendRequest;

const FAST = new Set(["tensorflow", "wasm-blas", "wasm"]);

/**
 * Activates a backend by name and says which one runs and why. `auto` keeps a backend that is already
 * active (other than the pure-JS `cpu` fallback), so calling it before every fit costs nothing.
 */
export async function initBackend(name: BackendName = "auto"): Promise<BackendSelection> {
  const current = tf.engine().backendName;
  if (name === "auto" && current && FAST.has(current) && tf.findBackend(current)) {
    return { name: current as BackendSelection["name"], reason: "already active" };
  }
  if (name !== "auto" && current === name && tf.findBackend(current)) {
    return { name, reason: "already active" };
  }
  return await selectBackend(name);
}
