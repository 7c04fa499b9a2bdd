/**
 * The data plane: direct connections between the coordinator and its workers for bulk tensors
 * (weights, gradients, slice exchanges, datasets), beside NATS for control. Frames, the secret
 * handshake, the coordinator's listener and the workers' dialer.
 *
 * @module
 */
export * from "./address.ts";
export * from "./frames.ts";
export * from "./channel.ts";
export * from "./handshake.ts";
export * from "./listener.ts";
export * from "./dial.ts";
export * from "./shared_memory.ts";
export * from "./shared_exchange.ts";
