/**
 * `deno task pin-images [--check] [--registry HOST=URL]…`: pins every base and third-party image of
 * deploy/ by digest. Each `NAME:TAG@sha256:…` reference in the Dockerfiles (`FROM`) and the Kubernetes
 * manifests (`image:`) gets the digest its registry serves for `NAME:TAG` today (the multi-platform
 * index when there is one, as `docker buildx imagetools inspect` prints it), asked through the
 * registry's HTTP API (OCI distribution: `HEAD /v2/NAME/manifests/TAG`, with the anonymous bearer
 * token Docker Hub and most registries hand out).
 *
 * - Every image is resolved before any file changes: one that cannot be resolved names the image and
 *   the reason, and nothing is written.
 * - `--check` changes nothing and fails (exit 1) while a reference still holds the all-zero
 *   placeholder digest, for a release pipeline.
 * - `--registry HOST=URL` sends the requests for HOST (e.g. `docker.io`) to URL instead: a mirror.
 *
 * Needs network access to the registries (`--allow-net`); run it where that exists and commit the
 * result.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, relative } from "node:path";

/** The digest the repository holds until images are resolved. */
export const PLACEHOLDER_DIGEST = `sha256:${"0".repeat(64)}`;

/** One image reference in one file. */
export interface ImageReference {
  file: string;
  /** `NAME:TAG` as written. */
  image: string;
  digest: string;
}

const REFERENCE = /(?<=^\s*FROM\s+|^\s*(?:-\s+)?image:\s*)([^\s@"']+:[^\s@"']+)@(sha256:[0-9a-f]{64})/gm;

/** Files of deploy/ that name images: the Dockerfiles and the Kubernetes manifests. */
async function imageFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (/\.Dockerfile$|\.ya?ml$/.test(entry.name)) files.push(path);
    }
  };
  await walk(join(root, "deploy"));
  return files.sort();
}

/** Every `NAME:TAG@sha256:…` reference under `root`/deploy. */
export async function findImageReferences(root: string): Promise<ImageReference[]> {
  const found: ImageReference[] = [];
  for (const file of await imageFiles(root)) {
    for (const m of (await Deno.readTextFile(file)).matchAll(REFERENCE)) {
      found.push({ file, image: m[1]!, digest: m[2]! });
    }
  }
  return found;
}

/** Registry host, repository and tag of `NAME:TAG`, with Docker Hub's defaults. */
export function parseImage(image: string): { host: string; repository: string; tag: string } {
  const colon = image.lastIndexOf(":");
  const name = image.slice(0, colon), tag = image.slice(colon + 1);
  const first = name.split("/")[0]!;
  const hasHost = name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  const host = hasHost ? first : "docker.io";
  let repository = hasHost ? name.slice(first.length + 1) : name;
  if (host === "docker.io" && !repository.includes("/")) repository = `library/${repository}`;
  return { host, repository, tag };
}

/** The manifest types asked for: an index or list first, so the digest covers every platform. */
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** Options of {@link resolveDigest}. */
export interface ResolveOptions {
  /** Base URL per registry host, replacing `https://HOST` (Docker Hub: `https://registry-1.docker.io`). */
  registries?: Record<string, string>;
  fetch?: typeof fetch;
}

function registryUrl(host: string, opts: ResolveOptions): string {
  return opts.registries?.[host] ??
    (host === "docker.io" ? "https://registry-1.docker.io" : `https://${host}`);
}

/** The anonymous pull token a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge asks for. */
async function bearerToken(challenge: string, repository: string, get: typeof fetch): Promise<string> {
  const params = Object.fromEntries(
    [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]),
  );
  if (!/^bearer\s/i.test(challenge) || !params.realm) {
    throw new Error(`the registry asks for credentials this tool does not have (${challenge})`);
  }
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set("service", params.service);
  url.searchParams.set("scope", params.scope ?? `repository:${repository}:pull`);
  const response = await get(url);
  if (!response.ok) throw new Error(`its token service ${url.origin} answered ${response.status}`);
  const body = await response.json();
  const token = body.token ?? body.access_token;
  if (typeof token !== "string") throw new Error(`its token service ${url.origin} sent no token`);
  return token;
}

/** The digest the registry serves for `NAME:TAG` now. */
export async function resolveDigest(image: string, opts: ResolveOptions = {}): Promise<string> {
  const get = opts.fetch ?? fetch;
  const { host, repository, tag } = parseImage(image);
  const url = `${registryUrl(host, opts)}/v2/${repository}/manifests/${encodeURIComponent(tag)}`;
  const ask = (token?: string) =>
    get(url, {
      method: "HEAD",
      headers: { accept: ACCEPT, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
  try {
    let response = await ask();
    if (response.status === 401) {
      response = await ask(
        await bearerToken(response.headers.get("www-authenticate") ?? "", repository, get),
      );
    }
    if (response.status === 404) throw new Error(`the registry has no tag ${tag} of ${repository}`);
    if (!response.ok) throw new Error(`the registry answered ${response.status} ${response.statusText}`);
    const digest = response.headers.get("docker-content-digest") ?? "";
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new Error(`the registry's answer has no Docker-Content-Digest header (got "${digest}")`);
    }
    return digest;
  } catch (error) {
    throw new Error(
      `Cannot resolve the digest of ${image} at ${url}: ${error instanceof Error ? error.message : error}. ` +
        "Check the name and tag, and that this machine reaches the registry (or pass --registry HOST=URL)",
    );
  }
}

/** What {@link pinImages} did: each image with its old and new digest, and the files it rewrote. */
export interface PinResult {
  images: { image: string; from: string[]; to: string }[];
  changed: string[];
}

/**
 * Resolves every image referenced under `root`/deploy and rewrites the references whose digest
 * differs. Resolves all first: when one fails, it throws and no file is changed.
 */
export async function pinImages(root: string, opts: ResolveOptions = {}): Promise<PinResult> {
  const references = await findImageReferences(root);
  const images = [...new Set(references.map((r) => r.image))];
  const digests = new Map<string, string>();
  for (const image of images) digests.set(image, await resolveDigest(image, opts));
  const changed: string[] = [];
  for (const file of [...new Set(references.map((r) => r.file))]) {
    const text = await Deno.readTextFile(file);
    const pinned = text.replace(REFERENCE, (_, image: string) => `${image}@${digests.get(image)}`);
    if (pinned === text) continue;
    const temp = `${file}.pin-images.tmp`;
    await Deno.writeTextFile(temp, pinned);
    await Deno.rename(temp, file);
    changed.push(file);
  }
  return {
    images: images.map((image) => ({
      image,
      from: [...new Set(references.filter((r) => r.image === image).map((r) => r.digest))],
      to: digests.get(image)!,
    })),
    changed,
  };
}

if (import.meta.main) {
  const usage = "Usage: deno task pin-images [--check] [--registry HOST=URL]…";
  const root = new URL("..", import.meta.url).pathname;
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        check: { type: "boolean", default: false },
        registry: { type: "string", multiple: true, default: [] },
        root: { type: "string", default: root },
      },
    });
    const registries: Record<string, string> = {};
    for (const entry of values.registry) {
      const [host, url] = entry.split(/=(.*)/s);
      if (!host || !url) {
        throw new Error(`--registry must be HOST=URL, e.g. docker.io=https://mirror.example: got "${entry}"`);
      }
      registries[host] = url.replace(/\/$/, "");
    }
    if (values.check) {
      const unpinned = (await findImageReferences(values.root)).filter((r) =>
        r.digest === PLACEHOLDER_DIGEST
      );
      for (const r of unpinned) {
        console.error(`${relative(values.root, r.file)}: ${r.image} has no digest yet`);
      }
      if (unpinned.length > 0) {
        console.error(
          "Run `deno task pin-images` where the registries are reachable, then commit the result.",
        );
        Deno.exit(1);
      }
      console.log("Every image is pinned by digest.");
      Deno.exit(0);
    }
    const result = await pinImages(values.root, { registries });
    for (const { image, from, to } of result.images) {
      console.log(
        `${image}@${to}${from.every((d) => d === to) ? " (unchanged)" : ` (was ${from.join(", ")})`}`,
      );
    }
    console.log(
      result.changed.length === 0
        ? "No file changed."
        : `Rewrote ${result.changed.map((f) => relative(values.root, f)).join(", ")}`,
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(usage);
    Deno.exit(2);
  }
}
