/**
 * Reduction algorithms apart from their transport: the ring reduce-scatter's schedule and arithmetic.
 *
 * @module
 */
export * from "./ring.ts";
