/**
 * This process's environment without INIT_CWD, with NO_COLOR. A `deno task` that runs the tests sets
 * INIT_CWD to the folder it was run in, and a child process would inherit it: Shoal's commands take
 * relative paths from INIT_CWD, so a child meant to run in its own folder would write to the repository.
 * Pass it with `clearEnv: true`.
 */
export function userEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return { ...env, NO_COLOR: "1" };
}
