/**
 * The subset of TensorFlow's `Event`, `Summary` and `TensorProto` protobuf messages that
 * TensorBoard event files use, parsed at run time with protobufjs. Field numbers follow
 * `tensorflow/core/util/event.proto`, `tensorflow/core/framework/summary.proto`,
 * `tensor.proto`, `tensor_shape.proto` and `types.proto`.
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.8.1";

/** The `.proto` source (field names as in TensorFlow; unused fields are left out). */
export const EVENT_PROTO_SOURCE = `
syntax = "proto3";
package tensorboard;

enum DataType {
  DT_INVALID = 0;
  DT_FLOAT = 1;
  DT_DOUBLE = 2;
  DT_INT32 = 3;
  DT_STRING = 7;
  DT_INT64 = 9;
}

message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  DataType dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated float float_val = 5 [packed = true];
  repeated double double_val = 6 [packed = true];
  repeated int32 int_val = 7 [packed = true];
  repeated bytes string_val = 8;
}

enum DataClass {
  DATA_CLASS_UNKNOWN = 0;
  DATA_CLASS_SCALAR = 1;
  DATA_CLASS_TENSOR = 2;
  DATA_CLASS_BLOB_SEQUENCE = 3;
}

message SummaryMetadata {
  message PluginData {
    string plugin_name = 1;
    bytes content = 2;
  }
  PluginData plugin_data = 1;
  string display_name = 2;
  string summary_description = 3;
  DataClass data_class = 4;
}

message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    SummaryMetadata metadata = 9;
    oneof value {
      float simple_value = 2;
      TensorProto tensor = 8;
    }
  }
  repeated Value value = 1;
}

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    bytes graph_def = 4;
    Summary summary = 5;
  }
}
`;

/** `DataType` enum values used here. */
export const DataType = { DT_FLOAT: 1, DT_DOUBLE: 2, DT_STRING: 7 } as const;

/** `DataClass` enum values used here. */
export const DataClass = { DATA_CLASS_SCALAR: 1, DATA_CLASS_TENSOR: 2 } as const;

/** A `TensorProto` as a plain object. */
export interface TensorProtoObject {
  dtype: number;
  tensor_shape: { dim: { size: number }[] };
  tensor_content?: Uint8Array;
  string_val?: Uint8Array[];
}

/** A `Summary.Value` as a plain object, in the TF2 `tf.summary` form (metadata + tensor). */
export interface SummaryValueObject {
  tag: string;
  metadata: {
    plugin_data: { plugin_name: string; content?: Uint8Array };
    display_name?: string;
    summary_description?: string;
    data_class?: number;
  };
  tensor: TensorProtoObject;
}

/** A `Summary` as a plain object. */
export interface SummaryObject {
  value: SummaryValueObject[];
}

/** An `Event` as a plain object; set exactly one of `file_version`, `graph_def`, `summary`. */
export interface EventObject {
  wall_time: number;
  step: number;
  file_version?: string;
  graph_def?: Uint8Array;
  summary?: SummaryObject;
}

/** Encodes `Event` messages; create one per writer (holds the parsed schema). */
export class EventEncoder {
  readonly #event: protobuf.Type;

  constructor() {
    const root = protobuf.parse(EVENT_PROTO_SOURCE, { keepCase: true }).root;
    this.#event = root.lookupType("tensorboard.Event");
  }

  /** Serializes `event` to protobuf wire format. */
  encode(event: EventObject): Uint8Array {
    if (!Number.isSafeInteger(event.step)) {
      throw new RangeError(
        `Cannot encode an event as step must be a safe integer: current value is ${event.step}`,
      );
    }
    return this.#event.encode(event).finish();
  }
}
