/**
 * `deno task pin-images` against a registry served here: the OCI distribution API with Docker Hub's
 * anonymous bearer-token challenge, on a copy of deploy/.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  findImageReferences,
  parseImage,
  pinImages,
  PLACEHOLDER_DIGEST,
  resolveDigest,
} from "../tools/pin_images.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function sha256(text: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256:${Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The digest the registry below serves for `repository:tag` (an index, when asked for one). */
function digestOf(repository: string, tag: string, index: boolean): Promise<string> {
  return sha256(`${repository}:${tag}:${index ? "index" : "manifest"}`);
}

/** A registry that knows every tag but `missing`, and wants a bearer token from its own realm. */
function registry(): { url: string; asked: string[]; close: () => Promise<void> } {
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/token") {
      return Response.json({ token: `token-for:${url.searchParams.get("scope")}` });
    }
    const m = url.pathname.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
    if (!m || request.method !== "HEAD") return new Response(null, { status: 400 });
    const [, repository, tag] = m as unknown as [string, string, string];
    const scope = `repository:${repository}:pull`;
    if (request.headers.get("authorization") !== `Bearer token-for:${scope}`) {
      return new Response(null, {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${url.origin}/token",service="registry.test",scope="${scope}"`,
        },
      });
    }
    asked.push(`${repository}:${tag}`);
    if (tag === "missing") return new Response(null, { status: 404 });
    const index = (request.headers.get("accept") ?? "").startsWith("application/vnd.oci.image.index.v1+json");
    return new Response(null, {
      headers: { "docker-content-digest": await digestOf(repository, tag, index) },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, asked, close: () => server.shutdown() };
}

/** A copy of deploy/ whose references all hold the placeholder digest. */
async function deployCopy(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "shoal-pin-" });
  const out = await new Deno.Command("cp", { args: ["-r", join(ROOT, "deploy"), root] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  for (const r of await findImageReferences(root)) {
    const text = await Deno.readTextFile(r.file);
    await Deno.writeTextFile(
      r.file,
      text.replaceAll(`${r.image}@${r.digest}`, `${r.image}@${PLACEHOLDER_DIGEST}`),
    );
  }
  return root;
}

Deno.test("image names resolve to Docker Hub's repositories as docker does", () => {
  assert.deepEqual(parseImage("debian:bookworm-slim"), {
    host: "docker.io",
    repository: "library/debian",
    tag: "bookworm-slim",
  });
  assert.deepEqual(parseImage("nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04"), {
    host: "docker.io",
    repository: "nvidia/cuda",
    tag: "11.2.2-cudnn8-runtime-ubuntu20.04",
  });
  assert.deepEqual(parseImage("ghcr.io/org/tool:1.2"), {
    host: "ghcr.io",
    repository: "org/tool",
    tag: "1.2",
  });
  assert.deepEqual(parseImage("localhost:5000/shoal:dev"), {
    host: "localhost:5000",
    repository: "shoal",
    tag: "dev",
  });
});

Deno.test("every image of deploy/ is pinned to the digest its registry serves, and --check agrees", async () => {
  const server = registry();
  const root = await deployCopy();
  try {
    const before = await findImageReferences(root);
    const images = new Set(before.map((r) => r.image));
    for (const expected of ["debian:bookworm-slim", "denoland/deno:bin-2.9.6", "nats:2.11.8-alpine"]) {
      assert.ok(images.has(expected), `deploy/ names ${expected}`);
    }
    assert.ok(
      before.some((r) => r.file.endsWith(".Dockerfile")) && before.some((r) => r.file.endsWith(".yaml")),
    );

    const check = (expect: number) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, "tools/pin_images.ts"), "--check", "--root", root],
      }).output().then((out) => {
        assert.equal(out.code, expect, new TextDecoder().decode(out.stderr));
        return new TextDecoder().decode(out.stderr);
      });
    assert.match(await check(1), /debian:bookworm-slim has no digest yet/);

    const result = await pinImages(root, { registries: { "docker.io": server.url } });
    const after = await findImageReferences(root);
    assert.equal(after.length, before.length, "no reference lost or added");
    for (const r of after) {
      const { repository, tag } = parseImage(r.image);
      assert.equal(
        r.digest,
        await digestOf(repository, tag, true),
        `${r.file}: ${r.image} pinned to its index`,
      );
    }
    assert.equal(result.images.length, images.size);
    assert.equal(server.asked.length, images.size, "each image is asked for once");
    await check(0);

    // Only the digests changed.
    for (const r of after) {
      const pinned = await Deno.readTextFile(r.file);
      const original = await Deno.readTextFile(join(ROOT, r.file.slice(root.length + 1)));
      const strip = (text: string) => text.replace(/@sha256:[0-9a-f]{64}/g, "@DIGEST");
      assert.equal(strip(pinned), strip(original), `${r.file}: only digests differ`);
    }
    assert.deepEqual((await pinImages(root, { registries: { "docker.io": server.url } })).changed, []);
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an image the registry cannot resolve is named, and no file is changed", async () => {
  const server = registry();
  const root = await deployCopy();
  try {
    const dockerfile = join(root, "deploy/container/cpu.Dockerfile");
    const text = await Deno.readTextFile(dockerfile);
    await Deno.writeTextFile(dockerfile, text.replace("debian:bookworm-slim@", "debian:missing@"));
    const snapshot = await Promise.all(
      (await findImageReferences(root)).map((r) => Deno.readTextFile(r.file)),
    );
    await assert.rejects(
      pinImages(root, { registries: { "docker.io": server.url } }),
      /Cannot resolve the digest of debian:missing at .*: the registry has no tag missing of library\/debian\. Check the name and tag/,
    );
    const now = await Promise.all((await findImageReferences(root)).map((r) => Deno.readTextFile(r.file)));
    assert.deepEqual(now, snapshot, "nothing was written");
    await assert.rejects(
      resolveDigest("debian:bookworm-slim", { registries: { "docker.io": "http://127.0.0.1:9" } }),
      /Cannot resolve the digest of debian:bookworm-slim at http:\/\/127\.0\.0\.1:9\/v2\/library\/debian\/manifests\/bookworm-slim: .*reaches the registry/,
    );
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});
