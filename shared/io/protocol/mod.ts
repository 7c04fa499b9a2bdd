/**
 * The coordinator–worker protocol: message headers (messages.ts) and bodies (bodies.ts), the same on
 * NATS and on the data plane.
 *
 * @module
 */
export * from "./messages.ts";
export * from "./bodies.ts";
