/**
 * Every error Shoal raises on purpose, in one place, so a caller can tell them apart with
 * `instanceof` (`import { errors } from "shoal/mod.ts"`). Each is defined beside the code that raises
 * it; this module is the index. Bad arguments raise the built-in `TypeError` and `RangeError`.
 *
 * | error | raised when |
 * | --- | --- |
 * | {@link TrainingInterruptedError} | `fit` stopped at a step boundary (SIGTERM, Ctrl-C, an aborted `signal`); it carries the position, and the backup was written |
 * | {@link NotEnoughWorkersError} | fewer than `minWorkers` workers lived for `joinTimeoutSeconds` |
 * | {@link StoppedWaitingError} | a wait for workers or the server ended because the run was stopped |
 * | {@link ModelMismatchError} | a worker's or a file's weights differ from the model's (names `weight`) |
 * | {@link KerasFileError} | a `.keras` or `.weights.h5` file cannot be read or does not fit the model |
 * | {@link DatasetError} | a dataset file is missing, damaged or of the wrong shape |
 * | {@link JobConfigError} | a `deno task train` flag or config value is wrong |
 * | {@link DataPlaneAuthError} | a data-plane peer did not prove the job's secret, or refused this one |
 * | {@link DataPlaneUnreachableError} | a worker reached none of the coordinator's data-plane addresses |
 * | {@link MessageFormatError} | a message does not follow the wire format |
 * | {@link PayloadTooLargeError} | a message body is larger than its receiver accepts |
 *
 * @module
 */
export { TrainingInterruptedError } from "./coordinator/trainer.ts";
export { NotEnoughWorkersError, StoppedWaitingError } from "./coordinator/distributed/pool.ts";
export { ModelMismatchError } from "./shared/model/network.ts";
export { KerasFileError } from "./shared/io/keras/errors.ts";
export { DatasetError } from "./shared/io/dataset_error.ts";
export { JobConfigError } from "./coordinator/job.ts";
export { DataPlaneAuthError, DataPlaneUnreachableError } from "./shared/io/data_plane/mod.ts";
export { MessageFormatError } from "./shared/io/nats/codec.ts";
export { PayloadTooLargeError } from "./shared/io/nats/chunking.ts";
