/**
 * `deno task k8s-secrets [--namespace NS] [--out DIR] [--force]`: writes the Kubernetes run's secret
 * material into `deploy/k8s/components/generated-secrets/generated/` (git-ignored), from which that
 * kustomize component generates the Secrets shoal-nats-credentials, shoal-nats-tls and
 * shoal-data-tls:
 *
 * - `coordinator-password`, `worker-password`: 32 random bytes each, base64url;
 * - `ca.crt`: a CA made for this run (its key is not kept: nothing else can be signed with it);
 * - `nats.crt`/`nats.key`: the NATS server's certificate for shoal-nats (and its namespace names);
 * - `data.crt`/`data.key`: the coordinator's data-plane certificate for shoal-coordinator.
 *
 * Needs `openssl` on the PATH. Existing files are kept unless `--force` (which rotates them all).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";

/** Where the component reads its files. */
export const GENERATED_DIR = new URL("../deploy/k8s/components/generated-secrets/generated", import.meta.url)
  .pathname;

/** The files the component needs. */
export const SECRET_FILES = [
  "coordinator-password",
  "worker-password",
  "ca.crt",
  "nats.crt",
  "nats.key",
  "data.crt",
  "data.key",
] as const;

/** Options of {@link writeK8sSecrets}. */
export interface K8sSecretsOptions {
  /** Folder to write. @default {GENERATED_DIR} */
  out?: string;
  /** Namespace the run is deployed to: its Service names go into the certificates. @default "default" */
  namespace?: string;
  /** Replace files that exist. @default false */
  force?: boolean;
  /** Days the certificates are valid. @default 365 */
  days?: number;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  let out;
  try {
    out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
  } catch (error) {
    throw new Error(
      `Cannot make the TLS material as openssl could not run (${(error as Error).message}): install ` +
        "openssl (Debian: apt-get install openssl) and run the task again",
    );
  }
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** DNS names of a Service as pods of `namespace` may dial it. */
function serviceNames(service: string, namespace: string): string {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ]
    .map((name) => `DNS:${name}`).join(",");
}

/** Writes the files (see the module doc); returns the folder. */
export async function writeK8sSecrets(options: K8sSecretsOptions = {}): Promise<string> {
  const out = options.out ?? GENERATED_DIR;
  const namespace = options.namespace ?? "default";
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new TypeError(
      `Cannot write the secrets as --namespace must be a Kubernetes namespace name (lower-case letters, ` +
        `digits and '-'): current value is ${JSON.stringify(namespace)}`,
    );
  }
  const days = String(options.days ?? 365);
  await Deno.mkdir(out, { recursive: true, mode: 0o700 });
  const existing = [];
  for (const file of SECRET_FILES) {
    if (await Deno.stat(join(out, file)).then(() => true, () => false)) existing.push(file);
  }
  if (existing.length === SECRET_FILES.length && !options.force) return out;
  if (existing.length > 0 && !options.force) {
    throw new Error(
      `Cannot write the secrets as ${out} holds only some of them (${existing.join(", ")}): ` +
        "run again with --force to make a new set",
    );
  }
  const work = await Deno.makeTempDir({ prefix: "shoal-k8s-secrets-" });
  try {
    const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(work, [
      "req",
      "-x509",
      ...key,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      days,
      "-subj",
      "/CN=Shoal run CA",
    ]);
    for (const [name, service] of [["nats", "shoal-nats"], ["data", "shoal-coordinator"]] as const) {
      await Deno.writeTextFile(
        join(work, `${name}.ext`),
        `subjectAltName=${serviceNames(service, namespace)}\nextendedKeyUsage=serverAuth\n`,
      );
      await openssl(work, [
        "req",
        ...key,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${service}`,
      ]);
      await openssl(work, [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        days,
        "-extfile",
        `${name}.ext`,
      ]);
    }
    const password = () =>
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
        .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    await Deno.writeTextFile(join(work, "coordinator-password"), password());
    await Deno.writeTextFile(join(work, "worker-password"), password());
    for (const file of SECRET_FILES) {
      await Deno.copyFile(join(work, file), join(out, file));
      await Deno.chmod(join(out, file), 0o600);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return out;
}

if (import.meta.main) {
  const usage = "Usage: deno task k8s-secrets [--namespace NS] [--out DIR] [--force]";
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        namespace: { type: "string" },
        out: { type: "string" },
        force: { type: "boolean" },
        help: { type: "boolean" },
      },
      strict: true,
    });
    if (values.help) {
      console.log(usage);
      Deno.exit(0);
    }
    const out = await writeK8sSecrets({
      ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
      ...(values.out === undefined ? {} : { out: values.out }),
      ...(values.force ? { force: true } : {}),
    });
    console.log(
      `Secret material in ${out} (git ignores it); deploy with kubectl apply -k deploy/k8s/overlays/…`,
    );
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${usage}`);
    Deno.exit(error instanceof TypeError ? 2 : 1);
  }
}
