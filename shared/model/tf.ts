/**
 * The TensorFlow.js core used by Shoal, with every op gradient registered. Everything in Shoal imports
 * tf from here so gradients and backends are set up once.
 */
// The union package registers all op gradients; tfjs-core's own register_all_gradients is ESM with
// extensionless imports, which Deno cannot load.
import "npm:@tensorflow/tfjs@4.22.0";
import "npm:@tensorflow/tfjs-backend-cpu@4.22.0";
export * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
