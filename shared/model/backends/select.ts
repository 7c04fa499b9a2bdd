/**
 * Runtime choice of the TensorFlow.js backend by name, with `auto` picking the fastest that loads here.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import "npm:@tensorflow/tfjs-backend-cpu@4.22.0";
// The union package registers every op gradient; tfjs-core's own register_all_gradients is ESM with
// extensionless imports, which Deno cannot load.
import "npm:@tensorflow/tfjs@4.22.0";
import { registerWasmBlasBackend, type WasmBlasOptions } from "./wasm_blas.ts";

/** Backends a user can ask for. */
export type BackendRequest = "auto" | "tensorflow-gpu" | "tensorflow" | "wasm-blas" | "wasm" | "cpu";

/** Every accepted {@link BackendRequest}, for CLI and config validation. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = [
  "auto",
  "tensorflow-gpu",
  "tensorflow",
  "wasm-blas",
  "wasm",
  "cpu",
];

/** The backend in use after {@link selectBackend}. */
export interface BackendSelection {
  /** What runs: never `auto`. */
  readonly name: Exclude<BackendRequest, "auto">;
  /** One line for the log: why this backend, and why faster ones were skipped. */
  readonly reason: string;
}

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Options of the `wasm-blas` backend. */
  wasmBlas?: WasmBlasOptions;
}

/**
 * What `tensorflow` and `tensorflow-gpu` need. @tensorflow/tfjs-node(-gpu) 4.22 downloads libtensorflow
 * 2.9.1 while installing (`scripts/deps-constants.js`); TensorFlow 2.9 GPU builds need CUDA 11.2 and
 * cuDNN 8.1.
 */
export const NATIVE_REQUIREMENTS = {
  "tensorflow": 'add "@tensorflow/tfjs-node": "npm:@tensorflow/tfjs-node@4.22.0" to the imports of ' +
    "deno.json, run `deno install --allow-scripts=npm:@tensorflow/tfjs-node` on a machine that can " +
    "download libtensorflow 2.9.1 from storage.googleapis.com, and run with --allow-ffi",
  "tensorflow-gpu": 'add "@tensorflow/tfjs-node-gpu": "npm:@tensorflow/tfjs-node-gpu@4.22.0" to the ' +
    "imports of deno.json, run `deno install --allow-scripts=npm:@tensorflow/tfjs-node-gpu` on a machine " +
    "that can download libtensorflow 2.9.1 (GPU) from storage.googleapis.com, with an NVIDIA driver " +
    ">= 450, CUDA 11.2 and cuDNN 8.1 installed; run with --allow-ffi",
} as const;

const NATIVE_PACKAGES = {
  "tensorflow": "@tensorflow/tfjs-node",
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
} as const;

/**
 * Makes `request` the active tfjs backend and says which one runs and why.
 *
 * - `auto` tries `tensorflow-gpu`, `tensorflow`, `wasm-blas`, `wasm`, then `cpu`, and keeps the first
 *   that loads; the reason lists what was skipped.
 * - `tensorflow-gpu` and `tensorflow` throw when their package cannot be loaded, with what to install.
 * - `wasm-blas` runs `wasm` when OpenBLAS cannot be opened; the reason says so.
 */
export async function selectBackend(
  request: BackendRequest = "auto",
  options: SelectBackendOptions = {},
): Promise<BackendSelection> {
  if (!BACKEND_REQUESTS.includes(request)) {
    throw new TypeError(
      `Cannot select a backend as the name must be one of ${BACKEND_REQUESTS.join(", ")}: ` +
        `current value is ${JSON.stringify(request)}`,
    );
  }
  if (request === "tensorflow-gpu" || request === "tensorflow") {
    const failure = await loadNative(request);
    if (failure !== undefined) {
      throw new Error(`Cannot use the ${request} backend as ${failure}: ${NATIVE_REQUIREMENTS[request]}`);
    }
    return { name: request, reason: `${request} requested` };
  }
  if (request === "auto") return await selectAuto(options);
  if (request === "wasm-blas") {
    const registration = await registerWasmBlasBackend(options.wasmBlas);
    await activate(registration.name);
    return { name: registration.name, reason: registration.notice ?? "wasm-blas requested" };
  }
  await activate(request);
  return { name: request, reason: `${request} requested` };
}

async function selectAuto(options: SelectBackendOptions): Promise<BackendSelection> {
  const skipped: string[] = [];
  for (const native of ["tensorflow-gpu", "tensorflow"] as const) {
    const failure = await loadNative(native);
    if (failure === undefined) return { name: native, reason: describe(native, skipped) };
    skipped.push(`${native}: ${failure}`);
  }
  const registration = await registerWasmBlasBackend(options.wasmBlas);
  if (registration.notice !== undefined) skipped.push(registration.notice);
  for (const name of [registration.name, "cpu"] as const) {
    try {
      await activate(name);
      return { name, reason: describe(name, skipped) };
    } catch (error) {
      skipped.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new Error(`Cannot select a backend as none could be initialized: ${skipped.join("; ")}`);
}

function describe(name: string, skipped: readonly string[]): string {
  return skipped.length === 0 ? `auto picked ${name}` : `auto picked ${name}; skipped ${skipped.join("; ")}`;
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) {
    throw new Error(`Cannot initialize the ${name} tfjs backend: tf.setBackend("${name}") returned false`);
  }
  await tf.ready();
}

/** Imports the native tfjs package and activates its backend; returns why it failed, or `undefined`. */
async function loadNative(name: "tensorflow-gpu" | "tensorflow"): Promise<string | undefined> {
  // A variable specifier keeps the type checker away from a package that is usually not installed.
  const specifier: string = NATIVE_PACKAGES[name];
  try {
    await import(specifier);
    await activate("tensorflow");
    return undefined;
  } catch (error) {
    if (isNotInstalled(error)) return `${specifier} is not installed`;
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return `${specifier} did not load (${message})`;
  }
}

/**
 * Whether an import failed because the package is not there at all (Deno reports it in several
 * words: "not a dependency", "not in import map", "Cannot find module"), rather than failing to load.
 */
function isNotInstalled(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if ((error as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND") return true;
  return /not a dependency|not in import map|cannot find (module|package)|Relative import path/i.test(
    error.message,
  );
}
