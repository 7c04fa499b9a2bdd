/**
 * Command-line options shared by the chapter's examples: `--workers N` trains on N worker processes,
 * `--quick` shrinks data and epochs (for CI), `--out DIR` is where files are written, `--seed N` makes
 * a run reproducible. The example code stays the same in every mode; only the sizes come from here.
 */
import { parseArgs } from "node:util";
import { z } from "npm:zod@4.6.7";
import type { DistributeOptions, tf } from "../mod.ts";
import { userPath } from "../shared/io/paths.ts";

/** Options every example receives. */
export interface ExampleOptions {
  /** Worker processes to train on; 0 trains in this process. @default 0 */
  readonly workers: number;
  /** Small data and few epochs. @default false */
  readonly quick: boolean;
  /** Seed for initial weights, shuffling, dropout and random data. @default 42 */
  readonly seed: number;
  /**
   * Output directory given with `--out` (absolute; a relative one is taken from the folder the command
   * ran in), or `undefined` (then {@link outDir} makes a temporary one).
   */
  readonly out: string | undefined;
}

/** Usage text of the examples' command line. */
export const USAGE = `Usage: deno task example NAME [--workers N] [--quick] [--out DIR] [--seed N]

  --workers N  train on N local worker processes over NATS (default 0: in this process)
  --quick      small data and few epochs
  --out DIR    directory for written files (default: a new temporary directory)
  --seed N     seed for weights, shuffling, dropout and random data (default 42)`;

const Flags = z.object({
  workers: z.coerce.number().int().min(0).default(0),
  quick: z.boolean().default(false),
  seed: z.coerce.number().int().min(0).default(42),
  out: z.string().min(1).optional(),
  help: z.boolean().default(false),
}).strict();

/** The parsed command line: the example's name (if given), its options, and whether help was asked. */
export interface ParsedArgs {
  name: string | undefined;
  options: ExampleOptions;
  help: boolean;
}

/**
 * Parses `NAME [--workers N] [--quick] [--out DIR] [--seed N]`.
 *
 * @throws {RangeError} naming the flag and the value when a flag is unknown or has a wrong value.
 */
export function parseExampleArgs(args: string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        workers: { type: "string" },
        quick: { type: "boolean" },
        seed: { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new RangeError(`Cannot parse the command line: ${(e as Error).message}\n\n${USAGE}`);
  }
  const flags = Flags.safeParse(parsed.values);
  if (!flags.success) {
    const issue = flags.error.issues[0]!;
    const flag = issue.path.join(".");
    const value = (parsed.values as Record<string, unknown>)[flag];
    throw new RangeError(
      `Cannot use --${flag}=${value} as ${issue.message.toLowerCase()}\n\n${USAGE}`,
    );
  }
  if (parsed.positionals.length > 1) {
    throw new RangeError(
      `Cannot run more than one example: received ${parsed.positionals.join(", ")}\n\n${USAGE}`,
    );
  }
  const { workers, quick, seed, out, help } = flags.data;
  const options = { workers, quick, seed, out: out === undefined ? undefined : userPath(out) };
  return { name: parsed.positionals[0], options, help };
}

/** `full`, or `quick` with `--quick` (a few epochs). */
export function epochs(opts: ExampleOptions, full: number, quick = 2): number {
  return opts.quick ? Math.min(full, quick) : full;
}

/** The tensor unchanged, or its first `quickRows` rows with `--quick`. */
export function sample<T extends tf.Tensor>(opts: ExampleOptions, t: T, quickRows = 2000): T {
  return opts.quick && t.shape[0]! > quickRows ? t.slice(0, quickRows) as T : t;
}

/** `{ distribute: { workers } }` with `--workers N` (N > 0), else nothing: spread into `fit` options. */
export function distribute(opts: ExampleOptions): { distribute?: DistributeOptions } {
  return opts.workers > 0 ? { distribute: { workers: opts.workers } } : {};
}

/** The `--out` directory (created if missing), or a new temporary directory. */
export async function outDir(opts: ExampleOptions): Promise<string> {
  if (opts.out === undefined) return await Deno.makeTempDir({ prefix: "shoal-example-" });
  await Deno.mkdir(opts.out, { recursive: true });
  return opts.out;
}
