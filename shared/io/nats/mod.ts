/**
 * NATS building blocks: a private server for local runs and tests, the wire format (JSON header +
 * binary body), float encodings, chunking above `max_payload` and safe subscriptions.
 *
 * @module
 */
export * from "./server.ts";
export * from "./codec.ts";
export * from "./float_encoding.ts";
export * from "./chunking.ts";
export * from "./safe_subscribe.ts";
export * from "./auth.ts";
export * from "./server_config.ts";
export * from "./allocator.ts";
