/**
 * Keras 3 file formats: `.keras` archives, `.weights.h5` weights files, and the rule that maps a
 * model config to the weights-file groups of its layers.
 *
 * @module
 */

export {
  decodeKerasArchive,
  encodeKerasArchive,
  formatKerasDate,
  KERAS_FORMAT_VERSION,
  type KerasArchive,
  type KerasArchiveInput,
  type KerasMetadata,
  readKerasArchive,
  writeKerasArchive,
} from "./archive.ts";
export { type AtomicWriteSource, writeFileAtomic } from "./atomic_write.ts";
export { KerasFileError } from "./errors.ts";
export {
  checkWeightsForConfig,
  kerasInnerGroups,
  kerasLayerVarCount,
  kerasVarGroups,
  type KerasVarGroupSpec,
  toSnakeCase,
} from "./naming.ts";
export {
  decodeWeightsH5,
  encodeWeightsH5,
  type KerasArray,
  type KerasDType,
  type KerasVarGroup,
  type KerasVariable,
  type KerasWeights,
  readWeightsH5,
  shapeSize,
  writeWeightsH5,
} from "./weights_h5.ts";
