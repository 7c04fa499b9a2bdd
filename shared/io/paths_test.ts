import assert from "node:assert/strict";
import { userCwd, userPath } from "./paths.ts";

Deno.test("userCwd prefers INIT_CWD (set by deno task) and falls back to the process's folder", () => {
  assert.equal(userCwd({ INIT_CWD: "/home/me/project" }), "/home/me/project");
  assert.equal(userCwd({}), Deno.cwd());
  assert.equal(userCwd({ INIT_CWD: "" }), Deno.cwd());
});

Deno.test("userPath resolves relative paths against the user's folder and keeps absolute ones", () => {
  assert.equal(userPath("s.json", "/home/me"), "/home/me/s.json");
  assert.equal(userPath("../logs/run1", "/home/me/work"), "/home/me/logs/run1");
  assert.equal(userPath("/data/ckpt", "/home/me"), "/data/ckpt");
});
