import assert from "node:assert/strict";
import { join } from "node:path";
import { DatasetError } from "./dataset_error.ts";
import { downloadFile, sha256Hex } from "./download.ts";

const BODY = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7) % 251);

async function entries(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** A real HTTP server on a free loopback port, plus a fresh temp dir; both cleaned up on dispose. */
async function fixture(handler: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const dir = await Deno.makeTempDir();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dir,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("sha256Hex matches a known digest", async () => {
  assert.equal(
    await sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("downloadFile writes a verified file and nothing else", async () => {
  await using f = await fixture(() => new Response(BODY));
  const dest = join(f.dir, "data.bin");
  await downloadFile(`${f.url}/data.bin`, dest, { sha256: (await sha256Hex(BODY)).toUpperCase() });
  assert.deepEqual(await Deno.readFile(dest), BODY);
  assert.deepEqual(await entries(f.dir), ["data.bin"]);
});

Deno.test("downloadFile on a hash mismatch names URL and both hashes, and leaves no file", async () => {
  await using f = await fixture(() => new Response(BODY));
  const url = `${f.url}/data.bin`;
  const expected = "0".repeat(64);
  const actual = await sha256Hex(BODY);
  await assert.rejects(downloadFile(url, join(f.dir, "data.bin"), { sha256: expected }), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.file, url);
    assert.ok(e.message.includes(`${url} as its SHA-256 must be ${expected}: found ${actual}`), e.message);
    return true;
  });
  assert.deepEqual(await entries(f.dir), []);
});

Deno.test("downloadFile reports an HTTP error status and an unreachable server", async () => {
  await using f = await fixture(() => new Response("missing", { status: 404, statusText: "Not Found" }));
  const sha256 = await sha256Hex(BODY);
  await assert.rejects(
    downloadFile(`${f.url}/nope.gz`, join(f.dir, "nope.gz"), { sha256 }),
    /nope\.gz as the server must answer 200 with a body: found 404 Not Found.*SHOAL_DATASET_URL/,
  );
  const closed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response());
  const port = closed.addr.port;
  await closed.shutdown();
  await assert.rejects(
    downloadFile(`http://127.0.0.1:${port}/x`, join(f.dir, "x"), { sha256 }),
    /Cannot download http:\/\/127\.0\.0\.1:\d+\/x: the request failed/,
  );
  assert.deepEqual(await entries(f.dir), []);
});

Deno.test("downloadFile aborted mid-transfer rethrows the reason and removes the partial file", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using f = await fixture(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(BODY.subarray(0, 1000));
        },
        async pull(controller) {
          await released;
          controller.close();
        },
      }),
    )
  );
  const controller = new AbortController();
  const download = downloadFile(`${f.url}/slow`, join(f.dir, "slow"), {
    sha256: await sha256Hex(BODY),
    signal: controller.signal,
  });
  const settled = download.catch((e: unknown) => e);
  for (let i = 0; i < 200 && !(await entries(f.dir)).some((n) => n.endsWith(".part")); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal((await entries(f.dir)).filter((n) => n.endsWith(".part")).length, 1);
  const reason = new Error("stop now");
  controller.abort(reason);
  assert.equal(await settled, reason);
  release();
  assert.deepEqual(await entries(f.dir), []);
});

Deno.test("downloadFile rejects a malformed expected hash before any request", async () => {
  let requests = 0;
  await using f = await fixture(() => {
    requests++;
    return new Response(BODY);
  });
  await assert.rejects(
    downloadFile(`${f.url}/a`, join(f.dir, "a"), { sha256: "abc" }),
    (e: unknown) => e instanceof TypeError && /64 hex digits: current value is "abc"/.test(e.message),
  );
  assert.equal(requests, 0);
});
