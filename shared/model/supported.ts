/**
 * What Shoal supports, derived from the code, and the `layers` namespace that answers a Keras layer it
 * lacks with an error naming it (instead of `layers.Embedding is not a constructor`).
 *
 * @module
 */
import * as layerModule from "./layers/mod.ts";
import { Layer } from "./layers/mod.ts";
import { didYouMean } from "./suggest.ts";

/** The Keras layers Shoal builds: every `Layer` class of the layers module, and `Input`. */
export const SUPPORTED_LAYERS: readonly string[] = [
  ...Object.entries(layerModule)
    .filter(([, value]) => typeof value === "function" && value.prototype instanceof Layer)
    .map(([name]) => name),
  "Input",
].sort();

/** The error for a layer name Shoal lacks: the name, that it is not supported yet, and what is. */
export function unsupportedLayerMessage(
  name: string,
  how: string,
  supported: readonly string[] = SUPPORTED_LAYERS,
): string {
  return `Cannot ${how} as Shoal does not support a layer named ${name} yet: the supported layers are ` +
    `${supported.join(", ")} (README.md, "What Shoal supports").` + didYouMean(name, supported);
}

/**
 * The layers module behind a Proxy: reading a capitalized name it does not export (`layers.Embedding`,
 * `layers.LSTM`, a misspelt `layers.Dence`) throws a `TypeError` that names it and lists the supported
 * layers. Other names (symbols, `then`, lower-case keys) read as usual.
 */
export function guardLayers<T extends object>(namespace: T): T {
  return new Proxy(namespace, {
    get(target, key, receiver) {
      if (typeof key === "string" && /^[A-Z]/.test(key) && !Reflect.has(target, key)) {
        throw new TypeError(unsupportedLayerMessage(key, `use layers.${key}`));
      }
      return Reflect.get(target, key, receiver);
    },
  });
}
