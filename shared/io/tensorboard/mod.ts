/**
 * TensorBoard event files: TFRecord framing, `Event`/`Summary` protobufs, and a buffered writer.
 *
 * @module
 */

export { EVENT_FILE_VERSION, EventFileWriter, type EventFileWriterOptions } from "./event_writer.ts";
export {
  DataClass,
  DataType,
  EventEncoder,
  type EventObject,
  type SummaryObject,
  type SummaryValueObject,
  type TensorProtoObject,
} from "./event_proto.ts";
export {
  DEFAULT_HISTOGRAM_BUCKETS,
  histogramBuckets,
  histogramValue,
  kerasModelValue,
  scalarValue,
} from "./summary.ts";
export { crc32cOf, encodeTFRecord, maskedCrc32c, TFRECORD_OVERHEAD_BYTES } from "./tfrecord.ts";
