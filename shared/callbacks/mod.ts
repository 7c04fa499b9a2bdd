/**
 * Keras callbacks for Shoal: the protocol, the standard callbacks and the list that runs them.
 *
 * @module
 */
export {
  Callback,
  type CallbackModel,
  type CallbackOptimizer,
  type Logs,
  type TrainParams,
} from "./callback.ts";
export { type PrintFn, type WarnFn, writeStdout } from "./output.ts";
export { inferDirection, MonitorCallback, type MonitorMode, type MonitorOptions } from "./monitor.ts";
export { EarlyStopping, type EarlyStoppingOptions } from "./early_stopping.ts";
export { ReduceLROnPlateau, type ReduceLROnPlateauOptions } from "./reduce_lr_on_plateau.ts";
export {
  ModelCheckpoint,
  type ModelCheckpointConfig,
  type ModelCheckpointOptions,
} from "./model_checkpoint.ts";
export { CSVLogger, type CSVLoggerOptions } from "./csv_logger.ts";
export {
  type LearningRateSchedule,
  LearningRateScheduler,
  type LearningRateSchedulerOptions,
} from "./learning_rate_scheduler.ts";
export { TerminateOnNaN, type TerminateOnNaNOptions } from "./terminate_on_nan.ts";
export { History } from "./history.ts";
export { Progbar, type ProgbarOptions } from "./progbar.ts";
export { ProgbarLogger, type ProgbarLoggerOptions } from "./progbar_logger.ts";
export { CallbackList, type CallbackListOptions } from "./callback_list.ts";
export {
  hasModelJson,
  isNamedWeightsModel,
  type NamedWeight,
  type NamedWeightsModel,
  TensorBoard,
  type TensorBoardOptions,
  type UpdateFreq,
} from "./tensorboard.ts";
export {
  BACKUP_FILE,
  BackupAndRestore,
  type BackupAndRestoreOptions,
  type BackupContents,
  isStateful,
  readBackup,
  type StatefulCallback,
  writeBackup,
} from "./backup_and_restore.ts";
export {
  type BackupOptimizer,
  type BackupReason,
  type FitFingerprint,
  isRunBackup,
  type RunAccess,
  type RunBackup,
  type TrainingPosition,
} from "./training_run.ts";
