import assert from "node:assert/strict";
import { NATS_JS_VERSION, NodeTransport } from "./nats_internals.ts";

Deno.test("the installed nats.js is the release whose internals nats_internals.ts names", async () => {
  // An upgrade of nats.js must fail here first: check every name nats_internals.ts exports, then
  // change NATS_JS_VERSION.
  assert.equal(new NodeTransport().version, NATS_JS_VERSION);
  const source = await Deno.readTextFile(new URL("./nats_internals.ts", import.meta.url));
  const versions = new Set([...source.matchAll(/npm:nats@([^/"]+)/g)].map((m) => m[1]));
  assert.deepEqual([...versions], [NATS_JS_VERSION]);
});
