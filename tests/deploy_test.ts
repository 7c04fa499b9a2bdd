/**
 * The Kubernetes manifests in deploy/k8s: every overlay renders with `kubectl kustomize`, every object
 * passes its schema (kubernetes-models' validators, generated from the API's OpenAPI spec; the JobSet
 * CRD's OpenAPI schema, release v0.12.0, in tests/fixtures/k8s), the pods keep the security,
 * secret-reading and scheduling rules the deployment relies on, and the rendered container commands,
 * job file and NATS configuration run a real job as local processes, whose workers all end with it.
 * Also: a single-node multi-GPU run gives each spawned worker its own CUDA_VISIBLE_DEVICES.
 */
import assert from "node:assert/strict";
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from "npm:yaml@2.9.1";
import { Ajv } from "npm:ajv@8.20.0";
import { ConfigMap } from "npm:kubernetes-models@4.5.1/v1/ConfigMap";
import { PersistentVolumeClaim } from "npm:kubernetes-models@4.5.1/v1/PersistentVolumeClaim";
import { Secret } from "npm:kubernetes-models@4.5.1/v1/Secret";
import { Service } from "npm:kubernetes-models@4.5.1/v1/Service";
import { Deployment } from "npm:kubernetes-models@4.5.1/apps/v1/Deployment";
import { StatefulSet } from "npm:kubernetes-models@4.5.1/apps/v1/StatefulSet";
import { Job } from "npm:kubernetes-models@4.5.1/batch/v1/Job";
import { NetworkPolicy } from "npm:kubernetes-models@4.5.1/networking.k8s.io/v1/NetworkPolicy";
import { startNatsServer } from "../shared/io/nats/server.ts";
import { WORKER_MAIN } from "../coordinator/launcher.ts";
import { writeK8sSecrets } from "../tools/k8s_secrets.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OVERLAYS = ["gpu-cluster", "cpu", "jobset", "kueue", "volcano"] as const;
type Overlay = typeof OVERLAYS[number];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: {
    secretName: string;
    defaultMode?: number;
    items?: { key: string; path: string; mode?: number }[];
  };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  emptyDir?: Record<string, unknown>;
}

interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  schedulerName?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  affinity?: {
    podAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: {
        topologyKey: string;
        labelSelector: { matchLabels: Record<string, string> };
      }[];
      preferredDuringSchedulingIgnoredDuringExecution?: {
        podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } };
      }[];
    };
  };
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

interface PodFailureRule {
  action: string;
  onExitCodes?: { containerName?: string; operator: string; values: number[] };
  onPodConditions?: { type: string; status: string }[];
}

interface JobSpec {
  completionMode?: string;
  completions?: number;
  parallelism?: number;
  backoffLimit?: number;
  podFailurePolicy?: { rules: PodFailureRule[] };
  template: PodTemplate;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  // deno-lint-ignore no-explicit-any
  spec?: any;
}

const VALIDATORS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

/**
 * The custom resources' OpenAPI schemas, compiled, by `apiVersion/kind`: JobSet v0.12.0, Kueue v0.19.2
 * (LocalQueue, ResourceFlavor, ClusterQueue) and Volcano v1.15.1 (PodGroup), copied from the releases.
 */
function crdValidators(): Map<string, (object: unknown) => string | null> {
  const files = [
    "jobset.x-k8s.io_jobsets.yaml",
    "kueue.x-k8s.io_localqueues.yaml",
    "kueue.x-k8s.io_resourceflavors.yaml",
    "kueue.x-k8s.io_clusterqueues.yaml",
    "scheduling.volcano.sh_podgroups.yaml",
  ];
  // Kubernetes' extensions (x-kubernetes-*) and formats (int32, int-or-string) are not JSON Schema.
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  const validators = new Map<string, (object: unknown) => string | null>();
  for (const file of files) {
    const crd = parseYaml(Deno.readTextFileSync(new URL(`./fixtures/k8s/${file}`, import.meta.url)));
    for (const version of crd.spec.versions) {
      const validate = ajv.compile(version.schema.openAPIV3Schema);
      validators.set(
        `${crd.spec.group}/${version.name}/${crd.spec.names.kind}`,
        (object) => validate(object) ? null : ajv.errorsText(validate.errors, { separator: "\n" }),
      );
    }
  }
  return validators;
}

const CRD_VALIDATORS = crdValidators();

/** Validates one rendered object against the API server's schema for its kind, or a custom resource's CRD. */
function validateObject(where: string, object: K8sObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const custom = CRD_VALIDATORS.get(key);
  if (custom) {
    const errors = custom(object);
    assert.equal(errors, null, `${where}: ${object.kind}/${object.metadata.name} is invalid:\n${errors}`);
    return;
  }
  const Validator = VALIDATORS[key];
  assert.ok(Validator, `${where}: no schema for ${object.apiVersion} ${object.kind}`);
  // kustomize wraps long base64 values over lines, which the API server's decoder skips.
  const unwrapped = object.kind === "Secret" && object.data
    ? {
      ...object,
      data: Object.fromEntries(Object.entries(object.data).map(([k, v]) => [k, v.replace(/\s/g, "")])),
    }
    : object;
  try {
    new Validator(unwrapped as never).validate();
  } catch (error) {
    assert.fail(`${where}: ${object.kind}/${object.metadata.name} is invalid: ${error}`);
  }
}

function kubectlPresent(): boolean {
  try {
    return new Deno.Command("kubectl", { args: ["version", "--client"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const HAS_KUBECTL = kubectlPresent();
if (!HAS_KUBECTL) {
  console.warn("deploy_test: kubectl is not installed; run `deno task setup` (apt-get install -y kubectl)");
}

let copied: Promise<string> | undefined;

/**
 * A copy of deploy/k8s with its generated secrets made by `deno task k8s-secrets`' code, as a user's
 * checkout has them; the repository holds none.
 */
function k8sDir(): Promise<string> {
  copied ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "shoal-k8s-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const out = await new Deno.Command("cp", { args: ["-r", `${ROOT}/deploy/k8s`, dir] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    await Deno.remove(`${dir}/k8s/components/generated-secrets/generated`, { recursive: true }).catch(
      () => {},
    );
    await writeK8sSecrets({ out: `${dir}/k8s/components/generated-secrets/generated` });
    return `${dir}/k8s`;
  })();
  return copied;
}

/** `kubectl kustomize` of an overlay (or a folder), parsed into objects. */
async function render(overlay: Overlay | { dir: string }, extraArgs: string[] = []): Promise<K8sObject[]> {
  const dir = typeof overlay === "string" ? `${await k8sDir()}/overlays/${overlay}` : overlay.dir;
  const out = await new Deno.Command("kubectl", { args: ["kustomize", ...extraArgs, dir] }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `kubectl kustomize ${dir} failed:\n${stderr}`);
  return parseAllDocuments(new TextDecoder().decode(out.stdout)).map((d) => d.toJS() as K8sObject);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `rendered manifests lack ${kind}/${name}`);
  return found;
}

/** The coordinator's or the workers' Job spec: a plain Job, or a replicated job of the JobSet. */
function jobSpec(objects: K8sObject[], role: "coordinator" | "worker"): JobSpec {
  const jobSet = objects.find((o) => o.kind === "JobSet");
  if (jobSet) {
    const name = role === "coordinator" ? "coordinator" : "workers";
    const replicated = jobSet.spec.replicatedJobs.find((r: { name: string }) => r.name === name);
    assert.ok(replicated, `JobSet/${jobSet.metadata.name} has no replicated job ${name}`);
    return replicated.template.spec;
  }
  return find(objects, "Job", `shoal-${role}`).spec;
}

/** Every pod template of the rendered objects, with where it is. */
function podTemplates(objects: K8sObject[]): [string, PodTemplate][] {
  const out: [string, PodTemplate][] = [];
  for (const o of objects) {
    if (o.kind === "JobSet") {
      for (const r of o.spec.replicatedJobs) {
        out.push([`JobSet/${o.metadata.name}/${r.name}`, r.template.spec.template]);
      }
    } else if (o.spec?.template?.spec) out.push([`${o.kind}/${o.metadata.name}`, o.spec.template]);
  }
  return out;
}

function container(spec: JobSpec | PodTemplate, name: string): Container {
  const pod = "template" in spec ? spec.template.spec : spec.spec;
  const found = pod.containers.find((c) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
}

function secretValues(secret: K8sObject): Record<string, string> {
  const values: Record<string, string> = { ...secret.stringData };
  for (const [key, b64] of Object.entries(secret.data ?? {})) values[key] = atob(b64);
  return values;
}

/** A container's environment as Kubernetes resolves it, `$(VAR)` references included. */
function resolveEnv(
  objects: K8sObject[],
  c: Container,
  pod: { name: string; index?: number },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of c.env ?? []) {
    const from = v.valueFrom;
    let value: string | undefined;
    if (v.value !== undefined) value = expand(v.value, env);
    else if (from?.secretKeyRef) {
      value = secretValues(find(objects, "Secret", from.secretKeyRef.name))[from.secretKeyRef.key];
    } else if (from?.configMapKeyRef) {
      value = find(objects, "ConfigMap", from.configMapKeyRef.name).data?.[from.configMapKeyRef.key];
    } else if (from?.fieldRef?.fieldPath === "metadata.name") value = pod.name;
    else if (
      from?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    ) {
      value = pod.index === undefined ? undefined : String(pod.index);
    }
    assert.ok(value !== undefined, `cannot resolve env ${v.name} of container ${c.name}`);
    env[v.name] = value;
  }
  return env;
}

/** Kubernetes' `$(VAR)` expansion in command, args and env values. */
function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
}

/** The value after `flag` in a container's args. */
function flag(c: Container, name: string): string | undefined {
  const args = c.args ?? [];
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

/** Kubernetes quantities as numbers (cores, bytes, devices). */
function quantity(value: string | number | undefined): number {
  if (value === undefined) return 0;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  assert.ok(m, `unsupported quantity ${value}`);
  const scale = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * scale;
}

/** The requests of the coordinator plus all workers: what a gang must have room for. */
function runRequests(objects: K8sObject[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (
    const [role, count] of [["coordinator", 1], [
      "worker",
      jobSpec(objects, "worker").parallelism ?? 1,
    ]] as const
  ) {
    for (const c of jobSpec(objects, role).template.spec.containers) {
      for (const [name, value] of Object.entries(c.resources?.requests ?? {})) {
        sum[name] = (sum[name] ?? 0) + count * quantity(value);
      }
    }
  }
  return sum;
}

const COMMON_KINDS = [
  "ConfigMap/shoal-job",
  "ConfigMap/shoal-nats-config",
  "Deployment/shoal-tensorboard",
  "NetworkPolicy/shoal-coordinator-data",
  "NetworkPolicy/shoal-default-deny",
  "NetworkPolicy/shoal-nats",
  "NetworkPolicy/shoal-worker-ring",
  "PersistentVolumeClaim/shoal-data",
  "PersistentVolumeClaim/shoal-dataset",
  "Secret/shoal-data-tls",
  "Secret/shoal-nats-credentials",
  "Secret/shoal-nats-tls",
  "Service/shoal-coordinator",
  "Service/shoal-nats",
  "Service/shoal-tensorboard",
  "StatefulSet/shoal-nats",
];
const PLAIN_JOBS = ["Job/shoal-coordinator", "Job/shoal-worker"];
const KINDS: Record<Overlay, string[]> = {
  "cpu": [...COMMON_KINDS, ...PLAIN_JOBS],
  "gpu-cluster": [...COMMON_KINDS, ...PLAIN_JOBS],
  "jobset": [...COMMON_KINDS, "JobSet/shoal"],
  "kueue": [
    ...COMMON_KINDS,
    "ClusterQueue/shoal",
    "JobSet/shoal",
    "LocalQueue/shoal",
    "ResourceFlavor/shoal-default",
  ],
  "volcano": [...COMMON_KINDS, ...PLAIN_JOBS, "PodGroup/shoal"],
};

Deno.test({
  name: "every overlay renders and every object passes its schema (the JobSet: the v0.12.0 CRD's)",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
      assert.deepEqual(kinds, KINDS[overlay].sort(), overlay);
      for (const object of objects) validateObject(overlay, object);
    }
  },
});

Deno.test({
  name: "schema-invalid objects are rejected (the validators are live)",
  async fn() {
    const bad = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "x" },
      spec: { parallelism: "two" },
    };
    assert.throws(() => new Job(bad as never).validate(), /parallelism/);
    if (!HAS_KUBECTL) return;
    const jobSet = find(await render("jobset"), "JobSet", "shoal");
    const broken = structuredClone(jobSet);
    broken.spec.failurePolicy.rules[0].action = "Retry";
    broken.spec.successPolicy.operator = "Some";
    const errors = CRD_VALIDATORS.get("jobset.x-k8s.io/v1alpha2/JobSet")!(broken) ?? "";
    assert.match(errors, /failurePolicy\/rules\/0\/action must be equal to one of the allowed values/);
    assert.match(errors, /successPolicy\/operator/);
    const podGroup = structuredClone(find(await render("volcano"), "PodGroup", "shoal"));
    podGroup.spec.minMember = "five";
    assert.match(CRD_VALIDATORS.get("scheduling.volcano.sh/v1beta1/PodGroup")!(podGroup) ?? "", /minMember/);
    const queue = structuredClone(find(await render("kueue"), "ClusterQueue", "shoal"));
    delete queue.spec.resourceGroups[0].flavors[0].resources[0].nominalQuota;
    assert.match(
      CRD_VALIDATORS.get("kueue.x-k8s.io/v1beta1/ClusterQueue")!(queue) ?? "",
      /must have required property 'nominalQuota'/,
    );
  },
});

Deno.test({
  name: "the coordinator's data port is served by a Service, admitted from workers only, and announced",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const service = find(objects, "Service", "shoal-coordinator");
      const coordinator = jobSpec(objects, "coordinator");
      for (const [key, value] of Object.entries(service.spec.selector as Record<string, string>)) {
        assert.equal(
          coordinator.template.metadata?.labels?.[key],
          value,
          `${overlay}: the Service selects the coordinator`,
        );
      }
      assert.deepEqual(
        service.spec.ports.map((
          p: { name: string; port: number; targetPort: string },
        ) => [p.name, p.port, p.targetPort]),
        [["data", 7070, "data"]],
      );
      const c = container(coordinator, "coordinator");
      assert.deepEqual(c.ports, [{ name: "data", containerPort: 7070 }]);
      assert.equal(flag(c, "--data-listen"), "0.0.0.0:7070");
      assert.equal(flag(c, "--data-advertise"), "shoal-coordinator:7070");
      const workerLabels = jobSpec(objects, "worker").template.metadata?.labels ?? {};
      const policy = find(objects, "NetworkPolicy", "shoal-coordinator-data").spec;
      assert.deepEqual(policy.podSelector.matchLabels, service.spec.selector);
      assert.equal(policy.ingress.length, 1);
      assert.deepEqual(policy.ingress[0].ports, [{ protocol: "TCP", port: 7070 }]);
      const from = policy.ingress[0].from;
      assert.equal(from.length, 1);
      for (const [key, value] of Object.entries(from[0].podSelector.matchLabels as Record<string, string>)) {
        assert.equal(workerLabels[key], value, `${overlay}: the data port admits the workers`);
      }
    }
  },
});

/** True when a label selector's `matchLabels` all hold in `labels`. */
function selects(
  selector: { matchLabels?: Record<string, string> },
  labels: Record<string, string>,
): boolean {
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
}

Deno.test({
  name: "workers reach each other's ring port, the one they listen on, and nothing else of a worker",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const worker = jobSpec(objects, "worker").template;
      const labels = worker.metadata?.labels ?? {};
      const c = container(jobSpec(objects, "worker"), "worker");
      assert.equal(flag(c, "--ring-listen"), "0.0.0.0:7071", `${overlay}: a fixed ring port`);
      assert.deepEqual(c.ports, [{ name: "ring", containerPort: 7071 }], overlay);
      // Every policy with ingress rules that applies to the worker pods: the ring policy alone.
      const admitting = objects.filter((o) =>
        o.kind === "NetworkPolicy" && o.spec.ingress !== undefined && selects(o.spec.podSelector, labels)
      );
      assert.deepEqual(admitting.map((o) => o.metadata.name), ["shoal-worker-ring"], overlay);
      const ring = admitting[0]!.spec;
      assert.deepEqual(ring.policyTypes, ["Ingress"]);
      assert.equal(ring.ingress.length, 1);
      assert.deepEqual(ring.ingress[0].ports, [{ protocol: "TCP", port: 7071 }]);
      assert.equal(ring.ingress[0].from.length, 1, `${overlay}: one peer, the workers`);
      const from = ring.ingress[0].from[0];
      assert.equal(from.namespaceSelector, undefined, `${overlay}: this namespace's workers only`);
      assert.ok(
        Object.keys(from.podSelector.matchLabels ?? {}).length > 0 && selects(from.podSelector, labels),
        `${overlay}: the ring port admits the workers`,
      );
      for (
        const other of [
          jobSpec(objects, "coordinator").template,
          ...podTemplates(objects).map(([, t]) => t),
        ]
      ) {
        const name = other.metadata?.labels?.["app.kubernetes.io/name"];
        if (name === labels["app.kubernetes.io/name"]) continue;
        assert.ok(
          !selects(from.podSelector, other.metadata?.labels ?? {}),
          `${overlay}: the ring port admits ${name}`,
        );
      }
    }
  },
});

Deno.test({
  name: "NATS is reached by the run's own pods only, on 4222; its monitor port is in no Service",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const service = find(objects, "Service", "shoal-nats");
      assert.deepEqual(service.spec.ports.map((p: { port: number }) => p.port), [4222]);
      for (const s of objects.filter((o) => o.kind === "Service")) {
        for (const p of s.spec.ports) {
          assert.notEqual(p.port, 8222, `${overlay}: Service/${s.metadata.name} exposes 8222`);
        }
      }
      const policy = find(objects, "NetworkPolicy", "shoal-nats").spec;
      assert.deepEqual(policy.ingress.map((r: { ports: unknown }) => r.ports), [[{
        protocol: "TCP",
        port: 4222,
      }]]);
      const admitted = policy.ingress[0].from[0].podSelector.matchExpressions[0].values.sort();
      const clients = [jobSpec(objects, "coordinator"), jobSpec(objects, "worker")]
        .map((j) => j.template.metadata?.labels?.["app.kubernetes.io/name"]).sort();
      assert.deepEqual(admitted, clients);
      // Every Shoal pod is under the default deny, so nothing else is admitted anywhere.
      const deny = find(objects, "NetworkPolicy", "shoal-default-deny").spec;
      assert.deepEqual(deny.policyTypes, ["Ingress"]);
      assert.equal(deny.ingress, undefined);
      for (const [where, pod] of podTemplates(objects)) {
        const name = pod.metadata?.labels?.["app.kubernetes.io/name"] ?? "";
        assert.ok(
          deny.podSelector.matchExpressions[0].values.includes(name),
          `${overlay}: ${where} is not under the deny`,
        );
      }
      const tls = find(objects, "ConfigMap", "shoal-nats-config").data?.["tls.conf"] ?? "";
      if (overlay === "cpu") assert.match(tls, /# no TLS/);
      else assert.match(tls, /cert_file: "\/etc\/nats-tls\/tls.crt"/, `${overlay}: TLS is on`);
    }
  },
});

Deno.test({
  name: "pods run as non-root with read-only roots, no capabilities and resource limits",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      for (const [where, template] of podTemplates(await render(overlay))) {
        const pod = template.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${overlay}: ${where}: runAsNonRoot`);
        for (const c of pod.containers) {
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}/${c.name}: read-only root`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}/${c.name}: escalation`);
          assert.deepEqual(
            c.securityContext?.capabilities?.drop,
            ["ALL"],
            `${where}/${c.name}: capabilities`,
          );
          assert.ok(
            c.resources?.requests?.memory && c.resources.limits?.memory,
            `${where}/${c.name}: memory`,
          );
        }
      }
    }
  },
});

/**
 * Whether a container can read the files of a Secret volume as the kubelet writes them: owned by
 * root, group `fsGroup` when the pod sets one (the kubelet then adds group read), mode `mode` of the
 * item, else `defaultMode`, else 0644.
 */
function readsSecret(pod: PodSpec, c: Container, volume: Volume, item?: { mode?: number }): boolean {
  const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser ?? 0;
  const mode = item?.mode ?? volume.secret?.defaultMode ?? 0o644;
  if (uid === 0 || (mode & 0o004) !== 0) return true;
  return pod.securityContext?.fsGroup !== undefined;
}

Deno.test({
  name: "every pod reads the Secrets it mounts: as root, through a matching fsGroup, or from secretKeyRef",
  ignore: !HAS_KUBECTL,
  async fn() {
    let mounted = 0;
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      for (const [where, template] of podTemplates(objects)) {
        const pod = template.spec;
        for (const c of pod.containers) {
          for (const mount of c.volumeMounts ?? []) {
            const volume = pod.volumes?.find((v) => v.name === mount.name);
            if (!volume?.secret) continue;
            mounted++;
            for (const item of volume.secret.items ?? [{}]) {
              assert.ok(
                readsSecret(pod, c, volume, item),
                `${overlay}: ${where}/${c.name} cannot read Secret ${volume.secret.secretName} at ${mount.mountPath}: ` +
                  "set the pod's securityContext.fsGroup (or mode 0444, or take it through secretKeyRef)",
              );
            }
          }
          for (const v of c.env ?? []) {
            if (v.valueFrom?.secretKeyRef) find(objects, "Secret", v.valueFrom.secretKeyRef.name);
          }
        }
      }
    }
    assert.ok(mounted >= 5 * 2, `${mounted} Secret mounts checked`);
    // The rule catches the original worker pod: uid 1000, mode 0400, no fsGroup.
    const before: PodSpec = { containers: [], securityContext: { runAsUser: 1000 } };
    const volume: Volume = { name: "s", secret: { secretName: "s", defaultMode: 0o400 } };
    assert.equal(readsSecret(before, { name: "w", image: "i" }, volume), false);
  },
});

/** Runs `deno eval` as uid 1000 (what the pod's securityContext says) with these extra groups. */
async function readAsUid1000(file: string, groups: number[]): Promise<{ code: number; err: string }> {
  const home = await Deno.makeTempDir();
  await Deno.chmod(home, 0o777);
  try {
    const out = await new Deno.Command("setpriv", {
      args: [
        "--reuid=1000",
        "--regid=1000",
        ...(groups.length ? [`--groups=${groups.join(",")}`] : ["--clear-groups"]),
        Deno.execPath(),
        "eval",
        `console.log(Deno.readTextFileSync(${JSON.stringify(file)}).length)`,
      ],
      env: { HOME: home, DENO_DIR: `${home}/deno`, NO_COLOR: "1" },
      cwd: home,
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test({
  name: "a root-owned 0400 secret file is unreadable to uid 1000; the rendered fsGroup makes it readable",
  ignore: !HAS_KUBECTL || Deno.uid() !== 0,
  async fn() {
    const objects = await render("cpu");
    const pod = jobSpec(objects, "worker").template.spec;
    const volume = pod.volumes!.find((v) => v.name === "nats-credentials")!;
    const dir = await Deno.makeTempDir();
    await Deno.chmod(dir, 0o755);
    const file = `${dir}/password`;
    try {
      await Deno.writeTextFile(file, "secret");
      // The original worker pod: the kubelet wrote the file root:root 0400; the process runs as 1000.
      await Deno.chown(file, 0, 0);
      await Deno.chmod(file, 0o400);
      const before = await readAsUid1000(file, []);
      assert.notEqual(before.code, 0);
      assert.match(before.err, /Permission denied|PermissionDenied/);
      // The rendered pod: the kubelet makes the file root:<fsGroup> with group read, and runs the
      // container with fsGroup among its supplementary groups.
      const fsGroup = pod.securityContext?.fsGroup;
      assert.equal(fsGroup, 1000);
      assert.equal(pod.securityContext?.runAsUser, 1000);
      await Deno.chown(file, 0, fsGroup);
      await Deno.chmod(file, (volume.secret?.defaultMode ?? 0o644) | 0o440);
      const after = await readAsUid1000(file, [fsGroup!]);
      assert.equal(after.code, 0, after.err);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "exit codes drive retries: Never restarts, DisruptionTarget ignored, exit 2 fails, 143/137 retry",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      for (const role of ["coordinator", "worker"] as const) {
        const job = jobSpec(objects, role);
        assert.equal(
          job.template.spec.restartPolicy,
          "Never",
          `${overlay}/${role}: podFailurePolicy needs Never`,
        );
        const rules = job.podFailurePolicy?.rules ?? [];
        assert.deepEqual(rules[0], {
          action: "Ignore",
          onPodConditions: [{ type: "DisruptionTarget", status: "True" }],
        });
        assert.deepEqual(rules[1], {
          action: "FailJob",
          onExitCodes: { containerName: role, operator: "In", values: [2] },
        });
        // Other codes count against backoffLimit: a retry.
        for (const code of [137, 143, 75]) {
          const rule = rules.find((r) => r.onExitCodes?.values.includes(code));
          assert.ok(
            rule === undefined || rule.action === "Count",
            `${overlay}/${role}: exit ${code} retries`,
          );
        }
        assert.ok((job.backoffLimit ?? 6) > 0);
      }
      const coordinator = jobSpec(objects, "coordinator");
      assert.ok((coordinator.template.spec.terminationGracePeriodSeconds ?? 30) >= 120, "time to checkpoint");
    }
  },
});

Deno.test({
  name: "workers serve exactly the coordinator's run: an Indexed Job bound by --job, as many as --workers",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const coordinatorJob = jobSpec(objects, "coordinator");
      const workerJob = jobSpec(objects, "worker");
      const coordinator = container(coordinatorJob, "coordinator");
      const worker = container(workerJob, "worker");
      assert.equal(workerJob.completionMode, "Indexed");
      assert.equal(workerJob.completions, workerJob.parallelism);
      const cEnv = resolveEnv(objects, coordinator, { name: "c" });
      const wEnv = resolveEnv(objects, worker, { name: "w", index: 3 });
      assert.equal(expand(flag(coordinator, "--workers")!, cEnv), String(workerJob.parallelism));
      const jobId = expand(flag(coordinator, "--job-id")!, cEnv);
      assert.match(jobId, /^[A-Za-z0-9_-]{1,64}$/);
      assert.equal(expand(flag(worker, "--job")!, wEnv), jobId);
      assert.equal(expand(flag(worker, "--name")!, wEnv), "worker-3");
      assert.ok(Number(flag(worker, "--join-timeout")) > 0);
      // A retried coordinator resumes from the backup it finds; --resume would fail the first pod.
      assert.ok(!coordinator.args?.includes("--resume"));
      assert.equal(flag(coordinator, "--checkpoint-dir"), "/data/checkpoints");
      const backend = wEnv.SHOAL_BACKEND;
      if (overlay === "cpu") {
        assert.equal(backend, "wasm-blas");
        assert.equal(worker.resources?.limits?.["nvidia.com/gpu"], undefined);
      } else {
        assert.equal(workerJob.parallelism, 4);
        assert.equal(backend, "tensorflow-gpu");
        assert.equal(worker.image, "shoal-gpu:0.1.0");
        assert.equal(String(worker.resources?.limits?.["nvidia.com/gpu"]), "1");
        assert.equal(cEnv.SHOAL_NATS_TLS_CA, "/var/run/secrets/shoal-nats-tls/ca.crt");
        assert.equal(wEnv.SHOAL_NATS_TLS_CA, "/var/run/secrets/shoal-nats-tls/ca.crt");
        assert.equal(cEnv.SHOAL_DATA_TLS_CERT, "/var/run/secrets/shoal-data-tls/tls.crt");
      }
      const natsConf = find(objects, "ConfigMap", "shoal-nats-config").data?.["nats.conf"] ?? "";
      const maxPayload = Number(/max_payload:\s*(\d+)/.exec(natsConf)?.[1]);
      assert.ok(
        maxPayload >= 16 * 1024 * 1024 && maxPayload <= 64 * 1024 * 1024,
        `max_payload ${maxPayload}`,
      );
      const passwords = Object.values(secretValues(find(objects, "Secret", "shoal-nats-credentials")));
      assert.equal(passwords.length, 2);
      for (const p of passwords) assert.ok(p.length >= 40, "a generated password");
      const visible = JSON.stringify(objects.filter((o) => o.kind !== "Secret"));
      for (const password of passwords) assert.ok(!visible.includes(password), "a password leaked");
    }
  },
});

Deno.test({
  name: "the JobSet owns the run: the plain Jobs' specs, success with the coordinator, bounded restarts",
  ignore: !HAS_KUBECTL,
  async fn() {
    const plain = await render("gpu-cluster");
    const jobSet = find(await render("jobset"), "JobSet", "shoal").spec;
    assert.deepEqual(jobSet.successPolicy, { operator: "All", targetReplicatedJobs: ["coordinator"] });
    assert.ok(jobSet.failurePolicy.maxRestarts >= 1 && jobSet.failurePolicy.maxRestarts <= 5);
    assert.deepEqual(jobSet.failurePolicy.rules, [
      { name: "BadInput", action: "FailJobSet", onJobFailureReasons: ["PodFailurePolicy"] },
    ]);
    assert.ok(jobSet.ttlSecondsAfterFinished > 0);
    assert.deepEqual(
      jobSet.replicatedJobs.map((r: { name: string; replicas: number }) => [r.name, r.replicas]),
      [
        ["coordinator", 1],
        ["workers", 1],
      ],
    );
    assert.deepEqual(jobSet.replicatedJobs[0].template.spec, find(plain, "Job", "shoal-coordinator").spec);
    assert.deepEqual(jobSet.replicatedJobs[1].template.spec, find(plain, "Job", "shoal-worker").spec);
  },
});

Deno.test({
  name:
    "gang scheduling: Kueue queues the whole JobSet within a quota that holds the run; Volcano gangs workers + 1",
  ignore: !HAS_KUBECTL,
  async fn() {
    const kueue = await render("kueue");
    const jobSet = find(kueue, "JobSet", "shoal");
    assert.equal(jobSet.metadata.labels?.["kueue.x-k8s.io/queue-name"], "shoal");
    const local = find(kueue, "LocalQueue", "shoal");
    assert.equal(local.apiVersion, "kueue.x-k8s.io/v1beta1");
    const cluster = find(kueue, "ClusterQueue", local.spec.clusterQueue);
    const group = cluster.spec.resourceGroups[0];
    const flavor = group.flavors[0];
    find(kueue, "ResourceFlavor", flavor.name);
    const needed = runRequests(kueue);
    assert.deepEqual(Object.keys(needed).sort(), [...group.coveredResources].sort());
    for (const r of flavor.resources) {
      assert.equal(
        quantity(r.nominalQuota),
        needed[r.name],
        `ClusterQueue quota of ${r.name} is the run's sum`,
      );
    }
    assert.deepEqual(needed, { cpu: 10, memory: 36 * 2 ** 30, "nvidia.com/gpu": 4 });

    const volcano = await render("volcano");
    const podGroup = find(volcano, "PodGroup", "shoal");
    assert.equal(podGroup.apiVersion, "scheduling.volcano.sh/v1beta1");
    assert.equal(podGroup.spec.minMember, (jobSpec(volcano, "worker").parallelism ?? 0) + 1);
    const sums = runRequests(volcano);
    for (const [name, value] of Object.entries(podGroup.spec.minResources as Record<string, string>)) {
      assert.equal(quantity(value), sums[name], `PodGroup minResources ${name}`);
    }
    for (const role of ["coordinator", "worker"] as const) {
      const template = jobSpec(volcano, role).template;
      assert.equal(template.spec.schedulerName, "volcano");
      assert.equal(template.metadata?.annotations?.["scheduling.k8s.io/group-name"], "shoal");
    }
  },
});

Deno.test({
  name: "the ReadWriteOnce volume: TensorBoard requires the coordinator's node, which prefers TensorBoard's",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      assert.deepEqual(find(objects, "PersistentVolumeClaim", "shoal-data").spec.accessModes, [
        "ReadWriteOnce",
      ]);
      const coordinator = jobSpec(objects, "coordinator").template;
      const tensorboard = find(objects, "Deployment", "shoal-tensorboard").spec.template as PodTemplate;
      const required =
        tensorboard.spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
      assert.equal(required.length, 1);
      assert.equal(required[0]!.topologyKey, "kubernetes.io/hostname");
      assert.deepEqual(required[0]!.labelSelector.matchLabels, {
        "app.kubernetes.io/name": coordinator.metadata?.labels?.["app.kubernetes.io/name"],
      });
      const preferred =
        coordinator.spec.affinity?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      assert.deepEqual(preferred[0]?.podAffinityTerm.labelSelector.matchLabels, tensorboard.metadata?.labels);
      const data = container(coordinator, "coordinator").volumeMounts?.find((m) => m.mountPath === "/data");
      assert.equal(
        coordinator.spec.volumes?.find((v) => v.name === data?.name)?.persistentVolumeClaim?.claimName,
        "shoal-data",
      );
    }
  },
});

/** Where a pod mounts the claim `claim`: the volume and each container's mount of it. */
function claimMounts(
  pod: PodSpec,
  claim: string,
): { volume: Volume | undefined; mounts: { container: string; mountPath: string; readOnly?: boolean }[] } {
  const volume = pod.volumes?.find((v) => v.persistentVolumeClaim?.claimName === claim);
  const mounts = pod.containers.flatMap((c) =>
    (c.volumeMounts ?? []).filter((m) => m.name === volume?.name).map((m) => ({ container: c.name, ...m }))
  );
  return { volume, mounts };
}

Deno.test({
  name: "the dataset volume: read-only at /datasets in the coordinator and every worker, on every variant",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(overlay);
      const claim = find(objects, "PersistentVolumeClaim", "shoal-dataset").spec;
      // Pods on many nodes mount it at once.
      assert.ok(
        claim.accessModes.some((m: string) => m === "ReadWriteMany" || m === "ReadOnlyMany"),
        `${overlay}: shoal-dataset is ${claim.accessModes}`,
      );
      for (const role of ["coordinator", "worker"] as const) {
        const pod = jobSpec(objects, role).template.spec;
        const { volume, mounts } = claimMounts(pod, "shoal-dataset");
        assert.equal(
          volume?.persistentVolumeClaim?.readOnly,
          true,
          `${overlay}/${role}: the claim is read-only`,
        );
        assert.deepEqual(
          mounts,
          [{ container: role, name: volume!.name, mountPath: "/datasets", readOnly: true }],
          `${overlay}/${role}: mounted read-only at /datasets`,
        );
      }
      // No other pod of the run mounts it, and none writable.
      for (const [where, template] of podTemplates(objects)) {
        for (const m of claimMounts(template.spec, "shoal-dataset").mounts) {
          assert.equal(m.readOnly, true, `${overlay}: ${where}/${m.container} mounts the dataset writable`);
        }
      }
    }
    // The fill Job alone writes it, to the folder the job file's commented trainData names.
    const fill = await render({ dir: `${await k8sDir()}/dataset-fill` });
    assert.deepEqual(fill.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      "Job/shoal-dataset-fill",
      "PersistentVolumeClaim/shoal-dataset",
    ]);
    for (const object of fill) validateObject("dataset-fill", object);
    const job = find(fill, "Job", "shoal-dataset-fill").spec as JobSpec;
    const { volume, mounts } = claimMounts(job.template.spec, "shoal-dataset");
    assert.notEqual(volume?.persistentVolumeClaim?.readOnly, true);
    assert.deepEqual(mounts.map((m) => [m.mountPath, m.readOnly ?? false]), [["/datasets", false]]);
    const c = container(job, "fill");
    assert.deepEqual(c.command, ["deno", "task", "shards"]);
    assert.equal(flag(c, "--out"), "/datasets/fashion-mnist");
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    for (const overlay of OVERLAYS) {
      const jobFile = find(await render(overlay), "ConfigMap", "shoal-job").data?.["job.yaml"] ?? "";
      assert.match(jobFile, /# trainData: \/datasets\/fashion-mnist\/train-\*\.npz/, overlay);
    }
  },
});

/** A pod's container as a local process: volumes become directories under `root`. */
interface LocalContainer {
  command: string;
  args: string[];
  env: Record<string, string>;
}

async function localContainer(
  objects: K8sObject[],
  job: JobSpec,
  c: Container,
  podRef: { name: string; index?: number },
  root: string,
  services: Record<string, string>,
  jobOverride: (text: string) => string,
): Promise<LocalContainer> {
  const pod = job.template.spec;
  const podName = podRef.name;
  const mounts: [string, string][] = [];
  const writes: (() => Promise<void>)[] = [];
  for (const mount of c.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume, `${podName}: volume ${mount.name} is not defined`);
    let dir = `${root}/${podName}/${volume.name}`;
    let files: Record<string, string> = {};
    let items: { key: string; path: string }[] | undefined;
    if (volume.configMap) {
      files = find(objects, "ConfigMap", volume.configMap.name).data ?? {};
      if (volume.configMap.name === "shoal-job") files = { "job.yaml": jobOverride(files["job.yaml"] ?? "") };
      items = volume.configMap.items;
    } else if (volume.secret) {
      files = secretValues(find(objects, "Secret", volume.secret.secretName));
      items = volume.secret.items;
    } else if (volume.persistentVolumeClaim) {
      dir = `${root}/pvc/${volume.persistentVolumeClaim.claimName}`;
    }
    const into = dir;
    writes.push(async () => {
      await Deno.mkdir(into, { recursive: true });
      for (const { key, path } of items ?? Object.keys(files).map((key) => ({ key, path: key }))) {
        assert.ok(files[key] !== undefined, `${podName}: volume ${volume.name} has no key ${key}`);
        // Paths in the job file name the pod's mounts, as the flags do: here, their directories.
        await Deno.writeTextFile(`${into}/${path}`, volume.configMap ? inMounts(files[key]!) : files[key]!);
      }
    });
    mounts.push([mount.mountPath, dir]);
  }
  mounts.sort((a, b) => b[0].length - a[0].length);
  /** `text` with each path under a mount path moved to its directory (in one pass: dirs are paths too). */
  function inMounts(text: string): string {
    const alternatives = mounts.map(([mountPath]) => mountPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const re = new RegExp(`(?<=^|[\\s"':])(${alternatives.join("|")})(?=/)`, "gm");
    return text.replace(re, (mountPath) => mounts.find(([m]) => m === mountPath)![1]);
  }
  for (const write of writes) await write();
  const local = (value: string) => {
    for (const [from, to] of Object.entries(services)) value = value.replaceAll(from, to);
    for (const [mountPath, dir] of mounts) {
      if (value === mountPath || value.startsWith(`${mountPath}/`)) {
        return dir + value.slice(mountPath.length);
      }
    }
    return value;
  };
  const env = Object.fromEntries(
    Object.entries(resolveEnv(objects, c, podRef)).map(([k, v]) => [k, local(v)]),
  );
  const [command, ...rest] = [...(c.command ?? []), ...(c.args ?? [])].map((a) => local(expand(a, env)));
  assert.equal(command, "deno", `${podName}: the image runs deno tasks`);
  // The image's DENO_DIR holds the cached modules; here that is this process's cache.
  return { command: Deno.execPath(), args: rest, env: { ...env, DENO_DIR: denoDir() } };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function denoDir(): string {
  const out = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" }).outputSync();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

function spawn(lc: LocalContainer, logs: string[], label: string): Deno.ChildProcess {
  const child = new Deno.Command(lc.command, {
    args: lc.args,
    env: lc.env,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (const stream of [child.stdout, child.stderr]) {
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write: (text) => void logs.push(...text.split("\n").map((l) => `${label}: ${l}`)),
      }),
    ).catch(() => {});
  }
  return child;
}

async function waitStatus(child: Deno.ChildProcess, ms: number): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), ms));
  const status = await Promise.race([child.status, late]);
  clearTimeout(timer);
  return status;
}

/** The rendered NATS server, coordinator and workers of the cpu overlay as local processes. */
interface LocalRun extends AsyncDisposable {
  coordinator: Deno.ChildProcess;
  workers: Deno.ChildProcess[];
  logs: string[];
  data: string;
  dataPort: number;
}

/**
 * Starts the cpu overlay's run locally: nats-server with the rendered config, the coordinator's
 * command with a tiny job (`job` edits its job file), and one process per worker index.
 * `workerArgs` edits the workers' rendered arguments (a shorter --join-timeout).
 */
async function startLocalRun(
  job: (spec: Record<string, unknown>) => Record<string, unknown>,
  workerArgs: (args: string[]) => string[] = (a) => a,
  prepare: (root: string, logs: string[]) => Promise<void> = () => Promise.resolve(),
): Promise<LocalRun> {
  const objects = await render("cpu");
  const natsSet = find(objects, "StatefulSet", "shoal-nats");
  const natsEnv = resolveEnv(objects, container(natsSet.spec.template, "nats"), { name: "shoal-nats-0" });
  const natsData = find(objects, "ConfigMap", "shoal-nats-config").data ?? {};
  const configText = (natsData["nats.conf"] ?? "")
    .replace(/^\s*include\s+\.\/(\S+)\s*$/gm, (_, file: string) => natsData[file] ?? "")
    .replace(
      /\$([A-Z_][A-Z0-9_]*)/g,
      (whole, name: string) => natsEnv[name] === undefined ? whole : JSON.stringify(natsEnv[name]),
    );
  const server = await startNatsServer({ configText });
  const root = await Deno.makeTempDir({ prefix: "shoal-k8s-run-" });
  const logs: string[] = [];
  const children: Deno.ChildProcess[] = [];
  const dispose = async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
    }
    // `deno task` does not pass SIGKILL on to the process it runs: end those by their temp paths.
    await new Deno.Command("pkill", { args: ["-KILL", "-f", root] }).output();
    await Deno.remove(root, { recursive: true });
    await server[Symbol.asyncDispose]();
  };
  try {
    const dataPort = freePort();
    const services = {
      "nats://shoal-nats:4222": server.url,
      "0.0.0.0:7070": `127.0.0.1:${dataPort}`,
      "shoal-coordinator:7070": `127.0.0.1:${dataPort}`,
    };
    const tiny = (text: string) =>
      stringifyYaml(job({ ...parseYaml(text), epochs: 1, limitTrain: 300, joinTimeout: 60, verbose: 0 }));
    await prepare(root, logs);
    const coordinatorJob = jobSpec(objects, "coordinator");
    const workerJob = jobSpec(objects, "worker");
    assert.equal(workerJob.parallelism, 2);
    const coordinator = await localContainer(
      objects,
      coordinatorJob,
      container(coordinatorJob, "coordinator"),
      { name: "shoal-coordinator-x1" },
      root,
      services,
      tiny,
    );
    assert.deepEqual(coordinator.args.slice(0, 2), ["task", "train"]);
    const workers = [];
    for (let index = 0; index < workerJob.parallelism!; index++) {
      const lc = await localContainer(
        objects,
        workerJob,
        container(workerJob, "worker"),
        { name: `shoal-worker-${index}-x1`, index },
        root,
        services,
        tiny,
      );
      workers.push(spawn({ ...lc, args: workerArgs(lc.args) }, logs, `worker-${index}`));
    }
    children.push(...workers);
    const coordinatorChild = spawn(coordinator, logs, "coordinator");
    children.push(coordinatorChild);
    return {
      coordinator: coordinatorChild,
      workers,
      logs,
      data: `${root}/pvc/shoal-data`,
      dataPort,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Waits for every worker to exit by itself; returns their exit codes. */
async function workerCodes(run: LocalRun, ms: number): Promise<number[]> {
  const codes = [];
  for (const child of run.workers) {
    const status = await waitStatus(child, ms);
    assert.ok(status, `a worker still runs after its coordinator ended:\n${run.logs.slice(-40).join("\n")}`);
    codes.push(status.code);
  }
  return codes;
}

Deno.test({
  name: "the rendered NATS config, coordinator and worker commands run a job; every process ends with it",
  ignore: !HAS_KUBECTL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using run = await startLocalRun((job) => job);
    const status = await waitStatus(run.coordinator, 240_000);
    assert.equal(
      status?.code,
      0,
      `the coordinator did not finish cleanly:\n${run.logs.slice(-60).join("\n")}`,
    );
    // Workers of an Indexed Job complete their index by exiting 0 when the run ends: no signal needed.
    assert.deepEqual(await workerCodes(run, 30_000), [0, 0], run.logs.slice(-30).join("\n"));
    const summary = JSON.parse(await Deno.readTextFile(`${run.data}/summary.json`));
    assert.equal(summary.epochs_run, 1);
    assert.equal(summary.workers, 2);
    // A handful of steps on 300 samples: the point is that the job ran; above chance (0.1) is enough.
    assert.ok(summary.test.accuracy > 0.12, `test accuracy ${summary.test.accuracy}`);
    // Tensors went over the coordinator's data port, as through its Service in a cluster.
    const joined = run.logs.filter((l) => /joined job shoal-run/.test(l));
    assert.equal(
      joined.filter((l) => l.includes(`data plane tcp://127.0.0.1:${run.dataPort}`)).length,
      2,
      joined.join("\n"),
    );
    assert.ok(
      joined.some((l) => l.includes("Worker worker-0 ")) &&
        joined.some((l) => l.includes("Worker worker-1 ")),
    );
    const runs = [...Deno.readDirSync(`${run.data}/logs`)].map((e) => e.name).sort();
    assert.ok(runs.includes("train"), `TensorBoard runs in /data/logs: ${runs}`);
  },
});

Deno.test({
  name:
    "when the coordinator fails, every worker exits too: at once on bad input, after --join-timeout when killed",
  ignore: !HAS_KUBECTL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const shortWait = (args: string[]) => args.map((a, i) => args[i - 1] === "--join-timeout" ? "3" : a);
    {
      // Bad input: the coordinator exits 2 before announcing the run; the workers give up with 75.
      await using run = await startLocalRun((job) => ({ ...job, epochs: 0 }), shortWait);
      const status = await waitStatus(run.coordinator, 60_000);
      assert.equal(status?.code, 2, run.logs.slice(-20).join("\n"));
      assert.deepEqual(await workerCodes(run, 30_000), [75, 75]);
    }
    {
      // Killed mid-run (out of memory, a lost node): the workers miss its heartbeats, wait for a
      // retried pod for --join-timeout, then exit 75.
      await using run = await startLocalRun(
        (job) => ({ ...job, epochs: 50, limitTrain: 3000, patience: 50 }),
        shortWait,
      );
      const deadline = Date.now() + 120_000;
      while (run.logs.filter((l) => /joined job shoal-run/.test(l)).length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      // The pod's processes all die at once: `deno task` and the coordinator it runs.
      for (const pid of [...descendants(run.coordinator.pid), run.coordinator.pid]) Deno.kill(pid, "SIGKILL");
      await run.coordinator.status;
      assert.deepEqual(await workerCodes(run, 60_000), [75, 75], run.logs.slice(-20).join("\n"));
      assert.ok(run.logs.some((l) => /leaving the job as vanished/.test(l)), run.logs.slice(-20).join("\n"));
    }
  },
});

Deno.test({
  name: "the rendered fill Job writes shards to the dataset volume, and the rendered run trains from them",
  ignore: !HAS_KUBECTL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    /** Runs the fill Job's command, on fewer rows, where the run's pods will find its volume. */
    const fill = async (root: string, logs: string[]) => {
      const objects = await render({ dir: `${await k8sDir()}/dataset-fill` });
      const job = find(objects, "Job", "shoal-dataset-fill").spec as JobSpec;
      const lc = await localContainer(
        objects,
        job,
        container(job, "fill"),
        { name: "fill-x1" },
        root,
        {},
        (t) => t,
      );
      const rows = ["--train-rows", "1500", "--validation-rows", "300", "--test-rows", "300"];
      const status = await spawn({ ...lc, args: [...lc.args, ...rows] }, logs, "fill").status;
      assert.equal(status.code, 0, logs.join("\n"));
    };
    await using run = await startLocalRun(
      (job) => {
        const { validationSplit: _split, limitTrain: _limit, ...rest } = job;
        return {
          ...rest,
          trainData: "/datasets/fashion-mnist/train-*.npz",
          validationData: "/datasets/fashion-mnist/val-*.npz",
          testData: "/datasets/fashion-mnist/test-*.npz",
        };
      },
      (a) => a,
      fill,
    );
    const status = await waitStatus(run.coordinator, 240_000);
    assert.equal(
      status?.code,
      0,
      `the coordinator did not finish cleanly:\n${run.logs.slice(-60).join("\n")}`,
    );
    assert.deepEqual(await workerCodes(run, 30_000), [0, 0], run.logs.slice(-30).join("\n"));
    const dataset = run.data.replace(/shoal-data$/, "shoal-dataset");
    assert.ok(
      run.logs.some((l) =>
        l.includes(`--train-data ${dataset}/fashion-mnist/train-*.npz: 1200 rows in 1 shard`)
      ),
      run.logs.filter((l) => l.startsWith("coordinator")).join("\n"),
    );
    const shards = [...Deno.readDirSync(`${dataset}/fashion-mnist`)].map((e) => e.name).sort();
    assert.deepEqual(shards, ["test-000.npz", "train-000.npz", "val-000.npz"], "no .partial file is left");
    const summary = JSON.parse(await Deno.readTextFile(`${run.data}/summary.json`));
    assert.equal(summary.workers, 2);
    assert.equal(summary.samples_processed, 1200);
    assert.equal(summary.history.val_loss.length, 1);
    assert.ok(summary.test.accuracy > 0.12, `test accuracy ${summary.test.accuracy}`);
  },
});

/** Process ids whose parent chain reaches `ancestor`. */
function descendants(ancestor: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      parent.set(Number(entry.name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // Exited while listing.
    }
  }
  return [...parent.keys()].filter((pid) => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === ancestor) return true;
    }
    return false;
  });
}

function procText(pid: number, file: "environ" | "cmdline"): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/${file}`).split("\0");
  } catch {
    return [];
  }
}

Deno.test({
  name: "`deno task train --gpus 0,1` gives each spawned worker its own CUDA_VISIBLE_DEVICES",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shoal-gpus-" });
    const train = new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "train",
        "--gpus",
        "0,1",
        "--limit-train",
        "300",
        "--epochs",
        "1",
        "--backend",
        "wasm-blas",
      ],
      cwd: ROOT,
      env: { SHOAL_DATA: `${dir}/data`, DENO_DIR: denoDir() },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = train.output();
    try {
      const seen = new Map<string, string | undefined>();
      const deadline = Date.now() + 60_000;
      while (seen.size < 2 && Date.now() < deadline) {
        for (const pid of descendants(train.pid)) {
          const cmdline = procText(pid, "cmdline");
          if (cmdline[0] !== Deno.execPath() || !cmdline.includes(WORKER_MAIN)) continue;
          const gpu = cmdline[cmdline.indexOf("--gpu") + 1];
          const env = procText(pid, "environ").find((e) => e.startsWith("CUDA_VISIBLE_DEVICES="));
          if (gpu !== undefined && env !== undefined) seen.set(gpu, env.split("=")[1]);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(Object.fromEntries(seen), { "0": "0", "1": "1" });
      const { code, stdout } = await output;
      assert.equal(code, 0, new TextDecoder().decode(stdout).slice(-2000));
    } finally {
      try {
        train.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await output.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "images: bases and third-party images by digest, NATS on a supported line, dependencies before sources",
  ignore: !HAS_KUBECTL,
  async fn() {
    const digest = /@sha256:[0-9a-f]{64}$/;
    for (const overlay of OVERLAYS) {
      for (const [where, template] of podTemplates(await render(overlay))) {
        for (const c of template.spec.containers) {
          if (/^shoal-(cpu|gpu):/.test(c.image)) continue;
          assert.match(
            c.image,
            digest,
            `${overlay}: ${where}/${c.name} image ${c.image} is not pinned by digest`,
          );
          const nats = /^nats:(\d+)\.(\d+)\.\d+-alpine@/.exec(c.image);
          if (c.name === "nats") {
            assert.ok(nats && Number(nats[2]) >= 11, `NATS ${c.image} is on a supported line`);
          }
        }
      }
    }
    for (const file of ["cpu", "gpu"]) {
      const text = await Deno.readTextFile(`${ROOT}/deploy/container/${file}.Dockerfile`);
      for (const [, image] of text.matchAll(/^FROM\s+(\S+)/gm)) {
        assert.match(image!, digest, `${file}: FROM ${image}`);
      }
      const install = text.indexOf("RUN deno install --frozen");
      const sources = text.search(/^COPY (coordinator|worker|shared)/m);
      assert.ok(
        install > 0 && install < sources,
        `${file}: dependencies are installed before the sources are copied`,
      );
    }
  },
});
