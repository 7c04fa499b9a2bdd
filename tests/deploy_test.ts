/**
 * The Kubernetes manifests in deploy/k8s: every overlay renders with `kubectl kustomize`, every object
 * passes the Kubernetes API schema (kubernetes-models' validators, generated from the API's OpenAPI
 * spec), the pods keep the security and scheduling rules the deployment relies on, and the rendered
 * container commands, job file and NATS configuration run a real job as local processes. Also: a
 * single-node multi-GPU run gives each spawned worker its own CUDA_VISIBLE_DEVICES.
 */
import assert from "node:assert/strict";
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from "npm:yaml@2.9.1";
import { ConfigMap } from "npm:kubernetes-models@4.5.1/v1/ConfigMap";
import { PersistentVolumeClaim } from "npm:kubernetes-models@4.5.1/v1/PersistentVolumeClaim";
import { Secret } from "npm:kubernetes-models@4.5.1/v1/Secret";
import { Service } from "npm:kubernetes-models@4.5.1/v1/Service";
import { Deployment } from "npm:kubernetes-models@4.5.1/apps/v1/Deployment";
import { StatefulSet } from "npm:kubernetes-models@4.5.1/apps/v1/StatefulSet";
import { Job } from "npm:kubernetes-models@4.5.1/batch/v1/Job";
import { startNatsServer } from "../shared/io/nats/server.ts";
import { WORKER_MAIN } from "../coordinator/launcher.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const K8S = `${ROOT}/deploy/k8s`;
const OVERLAYS = ["gpu-cluster", "cpu"] as const;

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
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: Record<string, unknown>;
}

interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: { replicas?: number; template?: { spec: PodSpec } };
}

const VALIDATORS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
};

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

/** `kubectl kustomize DIR`, parsed into objects. */
async function render(dir: string, extraArgs: string[] = []): Promise<K8sObject[]> {
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

function podSpec(object: K8sObject): PodSpec {
  const spec = object.spec?.template?.spec;
  assert.ok(spec, `${object.kind}/${object.metadata.name} has no pod template`);
  return spec;
}

function container(object: K8sObject, name: string): Container {
  const found = podSpec(object).containers.find((c) => c.name === name);
  assert.ok(found, `${object.kind}/${object.metadata.name} has no container ${name}`);
  return found;
}

function secretValues(secret: K8sObject): Record<string, string> {
  const values: Record<string, string> = { ...secret.stringData };
  for (const [key, b64] of Object.entries(secret.data ?? {})) values[key] = atob(b64);
  return values;
}

/** A container's environment as Kubernetes resolves it, `$(VAR)` references included. */
function resolveEnv(objects: K8sObject[], c: Container, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of c.env ?? []) {
    const from = v.valueFrom;
    let value: string | undefined;
    if (v.value !== undefined) value = expand(v.value, env);
    else if (from?.secretKeyRef) {
      value = secretValues(find(objects, "Secret", from.secretKeyRef.name))[from.secretKeyRef.key];
    } else if (from?.configMapKeyRef) {
      value = find(objects, "ConfigMap", from.configMapKeyRef.name).data?.[from.configMapKeyRef.key];
    } else if (from?.fieldRef?.fieldPath === "metadata.name") value = podName;
    assert.ok(value !== undefined, `cannot resolve env ${v.name} of container ${c.name}`);
    env[v.name] = value;
  }
  return env;
}

/** Kubernetes' `$(VAR)` expansion in command, args and env values. */
function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
}

Deno.test({
  name: "every overlay renders and every object passes the Kubernetes API schema",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(`${K8S}/overlays/${overlay}`);
      const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
      assert.deepEqual(kinds, [
        "ConfigMap/shoal-job",
        "ConfigMap/shoal-nats-config",
        "Deployment/shoal-tensorboard",
        "Job/shoal-coordinator",
        "PersistentVolumeClaim/shoal-data",
        "Secret/shoal-nats-credentials",
        "Service/shoal-coordinator",
        "Service/shoal-nats",
        "Service/shoal-tensorboard",
        "Service/shoal-worker",
        "StatefulSet/shoal-nats",
        "StatefulSet/shoal-worker",
      ]);
      for (const object of objects) {
        const Validator = VALIDATORS[`${object.apiVersion}/${object.kind}`];
        assert.ok(Validator, `${overlay}: no schema for ${object.apiVersion} ${object.kind}`);
        try {
          new Validator(object as never).validate();
        } catch (error) {
          assert.fail(`${overlay}: ${object.kind}/${object.metadata.name} is invalid: ${error}`);
        }
      }
    }
  },
});

Deno.test({
  name: "the coordinator's data port is served by a Service that workers reach and the job announces",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(`${K8S}/overlays/${overlay}`);
      const service = find(objects, "Service", "shoal-coordinator") as K8sObject & {
        spec: {
          selector: Record<string, string>;
          ports: { name: string; port: number; targetPort: string }[];
        };
      };
      const job = find(objects, "Job", "shoal-coordinator") as K8sObject & {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      for (const [key, value] of Object.entries(service.spec.selector)) {
        assert.equal(
          job.spec.template.metadata.labels[key],
          value,
          `${overlay}: the Service selects the coordinator`,
        );
      }
      assert.deepEqual(service.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [[
        "data",
        7070,
        "data",
      ]]);
      const c = container(job, "coordinator") as Container & {
        ports?: { name: string; containerPort: number }[];
      };
      assert.deepEqual(c.ports, [{ name: "data", containerPort: 7070 }]);
      const args = c.args ?? [];
      const flag = (name: string) => args[args.indexOf(name) + 1];
      assert.equal(flag("--data-listen"), "0.0.0.0:7070");
      assert.equal(flag("--data-advertise"), "shoal-coordinator:7070");
    }
  },
});

Deno.test({
  name: "a schema-invalid object is rejected (the validators are live)",
  fn() {
    const bad = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "x" },
      spec: { parallelism: "two" },
    };
    assert.throws(() => new Job(bad as never).validate(), /parallelism/);
  },
});

Deno.test({
  name: "pods run as non-root with read-only roots, no capabilities and resource limits",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(`${K8S}/overlays/${overlay}`);
      for (const object of objects.filter((o) => o.spec?.template)) {
        const pod = podSpec(object);
        const where = `${overlay}: ${object.kind}/${object.metadata.name}`;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
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

Deno.test({
  name: "the coordinator resumes from the volume, waits for every worker, and the GPU overlay asks for GPUs",
  ignore: !HAS_KUBECTL,
  async fn() {
    for (const overlay of OVERLAYS) {
      const objects = await render(`${K8S}/overlays/${overlay}`);
      const coordinatorJob = find(objects, "Job", "shoal-coordinator");
      const coordinator = container(coordinatorJob, "coordinator");
      const pod = podSpec(coordinatorJob);
      assert.equal(pod.restartPolicy, "OnFailure");
      assert.ok((pod.terminationGracePeriodSeconds ?? 30) >= 120, "grace period leaves time to checkpoint");
      const args = coordinator.args ?? [];
      // A rescheduled pod resumes from the backup it finds; --resume would fail the first pod.
      assert.ok(!args.includes("--resume"));
      assert.equal(args[args.indexOf("--checkpoint-dir") + 1], "/data/checkpoints");
      const data = coordinator.volumeMounts?.find((m) => m.mountPath === "/data");
      assert.equal(
        pod.volumes?.find((v) => v.name === data?.name)?.persistentVolumeClaim?.claimName,
        "shoal-data",
      );
      const workers = find(objects, "StatefulSet", "shoal-worker");
      const env = resolveEnv(objects, coordinator, "shoal-coordinator-0");
      assert.equal(expand(args[args.indexOf("--workers") + 1]!, env), String(workers.spec?.replicas));
      const worker = container(workers, "worker");
      const backend = resolveEnv(objects, worker, "shoal-worker-0").SHOAL_BACKEND;
      const natsConf = find(objects, "ConfigMap", "shoal-nats-config").data?.["nats.conf"] ?? "";
      const maxPayload = Number(/max_payload:\s*(\d+)/.exec(natsConf)?.[1]);
      assert.ok(
        maxPayload >= 16 * 1024 * 1024 && maxPayload <= 64 * 1024 * 1024,
        `max_payload ${maxPayload}`,
      );
      const passwords = Object.values(secretValues(find(objects, "Secret", "shoal-nats-credentials")));
      const visible = JSON.stringify(objects.filter((o) => o.kind !== "Secret"));
      for (const password of passwords) assert.ok(!visible.includes(password), "a password leaked");
      if (overlay === "gpu-cluster") {
        assert.equal(workers.spec?.replicas, 4);
        assert.equal(backend, "tensorflow-gpu");
        assert.equal(worker.image, "shoal-gpu:0.1.0");
        assert.equal(String(worker.resources?.limits?.["nvidia.com/gpu"]), "1");
      } else {
        assert.equal(backend, "wasm-blas");
        assert.equal(worker.resources?.limits?.["nvidia.com/gpu"], undefined);
      }
    }
  },
});

Deno.test({
  name: "the nats-tls component adds a server tls block and a CA for every client",
  ignore: !HAS_KUBECTL,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shoal-k8s-" });
    try {
      const up = dir.split("/").filter(Boolean).map(() => "..").join("/");
      await Deno.writeTextFile(
        `${dir}/kustomization.yaml`,
        stringifyYaml({
          resources: [`${up}${K8S}/overlays/cpu`],
          components: [`${up}${K8S}/components/nats-tls`],
        }),
      );
      const objects = await render(dir, ["--load-restrictor", "LoadRestrictionsNone"]);
      const tls = find(objects, "ConfigMap", "shoal-nats-config").data?.["tls.conf"] ?? "";
      assert.match(tls, /cert_file: "\/etc\/nats-tls\/tls.crt"/);
      for (
        const [kind, name, c] of [["Job", "shoal-coordinator", "coordinator"], [
          "StatefulSet",
          "shoal-worker",
          "worker",
        ]] as const
      ) {
        const env = resolveEnv(objects, container(find(objects, kind, name), c), "p");
        assert.equal(env.SHOAL_NATS_TLS_CA, "/var/run/secrets/shoal-nats-tls/ca.crt");
      }
      const coordinatorEnv = resolveEnv(
        objects,
        container(find(objects, "Job", "shoal-coordinator"), "coordinator"),
        "p",
      );
      assert.equal(coordinatorEnv.SHOAL_DATA_TLS_CERT, "/var/run/secrets/shoal-data-tls/tls.crt");
      assert.equal(coordinatorEnv.SHOAL_DATA_TLS_KEY, "/var/run/secrets/shoal-data-tls/tls.key");
      for (const object of objects) {
        new VALIDATORS[`${object.apiVersion}/${object.kind}`]!(object as never).validate();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
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
  owner: K8sObject,
  c: Container,
  podName: string,
  root: string,
  services: Record<string, string>,
  jobOverride: (text: string) => string,
): Promise<LocalContainer> {
  const pod = podSpec(owner);
  const mounts: [string, string][] = [];
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
    await Deno.mkdir(dir, { recursive: true });
    for (const { key, path } of items ?? Object.keys(files).map((key) => ({ key, path: key }))) {
      assert.ok(files[key] !== undefined, `${podName}: volume ${volume.name} has no key ${key}`);
      await Deno.writeTextFile(`${dir}/${path}`, files[key]!);
    }
    mounts.push([mount.mountPath, dir]);
  }
  mounts.sort((a, b) => b[0].length - a[0].length);
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
    Object.entries(resolveEnv(objects, c, podName)).map(([k, v]) => [k, local(v)]),
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

Deno.test({
  name: "the rendered NATS config, coordinator and worker commands run a job to completion locally",
  ignore: !HAS_KUBECTL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const objects = await render(`${K8S}/overlays/cpu`);
    const natsSet = find(objects, "StatefulSet", "shoal-nats");
    const natsEnv = resolveEnv(objects, container(natsSet, "nats"), "shoal-nats-0");
    const natsData = find(objects, "ConfigMap", "shoal-nats-config").data ?? {};
    const configText = (natsData["nats.conf"] ?? "")
      .replace(/^\s*include\s+\.\/(\S+)\s*$/gm, (_, file: string) => natsData[file] ?? "")
      .replace(
        /\$([A-Z_][A-Z0-9_]*)/g,
        (whole, name: string) => natsEnv[name] === undefined ? whole : JSON.stringify(natsEnv[name]),
      );
    await using server = await startNatsServer({ configText });
    const root = await Deno.makeTempDir({ prefix: "shoal-k8s-run-" });
    const logs: string[] = [];
    const children: Deno.ChildProcess[] = [];
    try {
      const dataPort = freePort();
      const services = {
        "nats://shoal-nats:4222": server.url,
        "0.0.0.0:7070": `127.0.0.1:${dataPort}`,
        "shoal-coordinator:7070": `127.0.0.1:${dataPort}`,
      };
      const tiny = (text: string) =>
        stringifyYaml({ ...parseYaml(text), epochs: 1, limitTrain: 300, joinTimeout: 60, verbose: 0 });
      const coordinatorJob = find(objects, "Job", "shoal-coordinator");
      const workerSet = find(objects, "StatefulSet", "shoal-worker");
      assert.equal(workerSet.spec?.replicas, 2);
      const coordinator = await localContainer(
        objects,
        coordinatorJob,
        container(coordinatorJob, "coordinator"),
        "shoal-coordinator-x1",
        root,
        services,
        tiny,
      );
      const workers = [];
      for (let i = 0; i < 2; i++) {
        const name = `shoal-worker-${i}`;
        workers.push(
          await localContainer(
            objects,
            workerSet,
            container(workerSet, "worker"),
            name,
            root,
            services,
            tiny,
          ),
        );
      }
      assert.deepEqual(coordinator.args.slice(0, 2), ["task", "train"]);
      const workerChildren = workers.map((w, i) => spawn(w, logs, `worker-${i}`));
      children.push(...workerChildren);
      const coordinatorChild = spawn(coordinator, logs, "coordinator");
      children.push(coordinatorChild);
      const status = await waitStatus(coordinatorChild, 240_000);
      assert.equal(status?.code, 0, `the coordinator did not finish cleanly:\n${logs.slice(-60).join("\n")}`);
      const data = `${root}/pvc/shoal-data`;
      const summary = JSON.parse(await Deno.readTextFile(`${data}/summary.json`));
      assert.equal(summary.epochs_run, 1);
      assert.equal(summary.workers, 2);
      // A handful of steps on 300 samples: the point is that the job ran; above chance (0.1) is enough.
      assert.ok(summary.test.accuracy > 0.12, `test accuracy ${summary.test.accuracy}`);
      // Tensors went over the coordinator's data port, as through its Service in a cluster.
      const joined = logs.filter((l) => /joined job/.test(l));
      assert.equal(
        joined.filter((l) => l.includes(`data plane tcp://127.0.0.1:${dataPort}`)).length,
        2,
        joined.join("\n"),
      );
      const runs = [...Deno.readDirSync(`${data}/logs`)].map((e) => e.name).sort();
      assert.ok(runs.includes("train"), `TensorBoard runs in /data/logs: ${runs}`);
      // Workers serve until stopped, as in their StatefulSet; SIGTERM ends them cleanly.
      for (const child of workerChildren) child.kill("SIGTERM");
      for (const child of workerChildren) {
        const ended = await waitStatus(child, 15_000);
        assert.equal(ended?.code, 0, `a worker did not stop on SIGTERM:\n${logs.slice(-30).join("\n")}`);
      }
    } finally {
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
    }
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
