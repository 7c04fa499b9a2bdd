import assert from "node:assert/strict";
import { tuneAllocator } from "./allocator.ts";

Deno.test("tuneAllocator sets glibc's malloc options, or keeps the environment's", async () => {
  assert.equal(tuneAllocator(), "tuned");
  assert.equal(tuneAllocator(), "tuned", "applying twice is harmless");
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { tuneAllocator } from "${new URL(
        "./allocator.ts",
        import.meta.url,
      )}"; console.log(tuneAllocator());`,
    ],
    env: { MALLOC_TOP_PAD_: "1048576" },
  }).output();
  assert.equal(new TextDecoder().decode(child.stdout).trim(), "kept (the environment sets malloc options)");
});
