/** Expands a shard pattern (`data/train-*.npz`) into file paths, sorted: the shard order. */
import { basename, dirname, join, resolve } from "node:path";
import { DatasetError } from "../dataset_error.ts";

function toRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  return new RegExp(`^${body}$`);
}

/**
 * The absolute paths matching `pattern`, sorted by name. `*` and `?` are wildcards in the file name;
 * the directory part is taken literally. A pattern without wildcards names one file.
 *
 * @throws {DatasetError} when the directory is missing or nothing matches.
 */
export function expandShards(pattern: string): string[] {
  const absolute = resolve(pattern);
  const dir = dirname(absolute);
  const name = basename(absolute);
  if (/[*?]/.test(dir)) {
    throw new DatasetError(
      pattern,
      `Cannot expand ${pattern} as wildcards must be in the file name only: found one in ${dir}. ` +
        "Put the shards in one directory.",
    );
  }
  if (!/[*?]/.test(name)) return [absolute];
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => !e.isDirectory).map((e) => e.name).sort();
  } catch (cause) {
    throw new DatasetError(
      pattern,
      `Cannot expand ${pattern} as directory ${dir} cannot be read: ${
        cause instanceof Error ? cause.message : cause
      }. Check the path and that the dataset volume is mounted.`,
      { cause },
    );
  }
  const re = toRegExp(name);
  const matches = names.filter((n) => re.test(n)).sort();
  if (matches.length === 0) {
    throw new DatasetError(
      pattern,
      `Cannot open dataset ${pattern} as no file in ${dir} matches ${name}: the directory holds ${names.length} ` +
        `files${names.length > 0 ? ` (e.g. ${names.slice(0, 3).join(", ")})` : ""}. Check the pattern.`,
    );
  }
  return matches.map((n) => join(dir, n));
}
