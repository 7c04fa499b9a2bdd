/**
 * Paths as the user typed them. `deno task` runs its command in the folder of `deno.json`, so a relative
 * path on the command line would resolve inside the repository; like npm, deno task records the folder
 * it was started from in `INIT_CWD` (and keeps one that a parent process set).
 *
 * @module
 */
import { resolve } from "node:path";

/** The folder the user ran the command from: `INIT_CWD` when deno task set it, else the process's. */
export function userCwd(env: Readonly<Record<string, string | undefined>> = Deno.env.toObject()): string {
  const init = env.INIT_CWD;
  return init !== undefined && init !== "" ? init : Deno.cwd();
}

/** `path` as an absolute path, a relative one taken from {@link userCwd} (or `cwd` when given). */
export function userPath(path: string, cwd: string = userCwd()): string {
  return resolve(cwd, path);
}
