import assert from "node:assert/strict";
import { writeFileAtomic } from "./atomic_write.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "atomic-write-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic creates and replaces files, leaving no temporary file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/out.bin`;
    await writeFileAtomic(path, bytes("first"));
    assert.equal(await Deno.readTextFile(path), "first");
    await writeFileAtomic(path, [bytes("sec"), bytes("ond")]);
    assert.equal(await Deno.readTextFile(path), "second");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["out.bin"]);
  });
});

Deno.test("writeFileAtomic keeps the old file when the source fails mid-way", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/out.bin`;
    await Deno.writeTextFile(path, "previous content");
    async function* failing() {
      yield bytes("partial new content");
      throw new Error("encoder failed");
    }
    await assert.rejects(writeFileAtomic(path, failing()), /encoder failed/);
    assert.equal(await Deno.readTextFile(path), "previous content");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["out.bin"]);
  });
});

Deno.test("writeFileAtomic fails clearly when the directory does not exist", async () => {
  await withDir(async (dir) => {
    await assert.rejects(writeFileAtomic(`${dir}/no/such/dir/out.bin`, bytes("x")), Deno.errors.NotFound);
  });
});
