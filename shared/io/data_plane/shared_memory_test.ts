import assert from "node:assert/strict";
import { SHARED_MEMORY_DIR, sharedMemoryAvailable, SharedRegion } from "./shared_memory.ts";

Deno.test({
  name: "a shared region is seen by a second mapping, outlives its name, and leaves no file",
  ignore: !sharedMemoryAvailable(),
  fn() {
    const owner = SharedRegion.create("shoal-test-region", 64);
    assert.match(owner.path, new RegExp(`^${SHARED_MEMORY_DIR}/shoal-test-region-p${Deno.pid}-[0-9a-f]{8}$`));
    const other = SharedRegion.open(owner.path, 64);
    owner.bytes.set([1, 2, 3], 8);
    assert.deepEqual([...other.bytes.subarray(8, 11)], [1, 2, 3]);
    owner.unlink();
    assert.throws(() => Deno.statSync(owner.path), Deno.errors.NotFound);
    other.bytes[0] = 9;
    assert.equal(owner.bytes[0], 9);
    other.close();
    owner.close();
  },
});

Deno.test({
  name: "a region is opened only under its own name and size; files of dead owners are removed",
  ignore: !sharedMemoryAvailable(),
  fn() {
    assert.throws(() => SharedRegion.open("/etc/passwd", 10), /a Shoal region lives in \/dev\/shm\/shoal-\*/);
    const region = SharedRegion.create("shoal-test-size", 32);
    try {
      assert.throws(() => SharedRegion.open(region.path, 64), /holds 32 bytes, not 64/);
    } finally {
      region.close();
    }
    // A pid far above pid_max belongs to no process.
    const orphan = `${SHARED_MEMORY_DIR}/shoal-test-orphan-p99999999-0123abcd`;
    Deno.writeFileSync(orphan, new Uint8Array(8));
    SharedRegion.create("shoal-test-sweep", 8).close();
    assert.throws(() => Deno.statSync(orphan), Deno.errors.NotFound);
  },
});
