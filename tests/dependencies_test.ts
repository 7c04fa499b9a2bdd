import assert from "node:assert/strict";

/** Every `npm:` specifier in the sources, by package name. */
async function npmSpecifiers(): Promise<Map<string, Set<string>>> {
  const root = new URL("../", import.meta.url);
  const out = await new Deno.Command("git", { args: ["ls-files", "*.ts"], cwd: root, stdout: "piped" })
    .output();
  const files = new TextDecoder().decode(out.stdout).split("\n").filter((f) => f !== "");
  const versions = new Map<string, Set<string>>();
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, root));
    for (const m of text.matchAll(/["']npm:\/?((?:@[^/@"']+\/)?[^/@"']+)@([^/"']+)/g)) {
      const set = versions.get(m[1]!) ?? new Set();
      versions.set(m[1]!, set.add(`${m[2]} (${file})`.split(" ")[0]!));
    }
  }
  return versions;
}

Deno.test("every npm package is imported at one pinned version across the sources", async () => {
  const versions = await npmSpecifiers();
  assert.ok(versions.has("@tensorflow/tfjs-core"), "the sources import tfjs-core through npm: specifiers");
  for (const [name, set] of versions) {
    assert.equal(set.size, 1, `${name} is imported at several versions: ${[...set].join(", ")}`);
    assert.match([...set][0]!, /^\d+\.\d+\.\d+$/, `${name} must be pinned to an exact version`);
  }
});
