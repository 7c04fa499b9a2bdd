/**
 * Local worker processes for a job: `deno run -A worker/main.ts --nats URL --name w<i> --job ID`, one
 * per worker (or per listed GPU, with CUDA_VISIBLE_DEVICES set). The children never outlive the
 * coordinator: {@link LocalWorkers.stop} kills them (continuing stopped ones first), SIGINT/SIGTERM
 * handlers kill them before the coordinator exits, and where util-linux `setpriv` exists the kernel
 * sends them SIGTERM when the coordinator dies in any other way. They are bound to their job
 * (`--job`): one dropped by the coordinator joins again, and each exits when the job ends or its
 * coordinator's heartbeat stops.
 */

/** Absolute path of the worker entry point. */
export const WORKER_MAIN: string = new URL("../worker/main.ts", import.meta.url).pathname;

/** Options of {@link launchWorkers}. */
export interface LaunchOptions {
  url: string;
  job: string;
  /** Number of workers (ignored when `gpus` is given: one per GPU). */
  count: number;
  /** GPU ids, one worker each. */
  gpus?: number[];
  backend: string;
  /** Extra environment for every worker (e.g. its NATS credentials, which never go on the command line). */
  env?: Record<string, string>;
  /** Extra arguments per worker index. */
  extraArgs?: (string[] | undefined)[];
  /**
   * The module each worker runs: worker/main.ts, or a program that wraps the worker process
   * (worker/process.ts) and takes the same arguments. @default {@link WORKER_MAIN}
   */
  entry?: string;
  /** Milliseconds between SIGTERM and SIGKILL when stopping. @default 3000 */
  stopGraceMs?: number;
}

/** One spawned worker. */
export interface LocalWorker {
  name: string;
  pid: number;
  /** Settles when the process exits. */
  status: Promise<Deno.CommandStatus>;
}

/** The spawned workers of one job. */
export class LocalWorkers implements AsyncDisposable {
  readonly workers: LocalWorker[];
  readonly #children: Deno.ChildProcess[];
  readonly #grace: number;
  #stopped = false;
  readonly #onSignal: Map<Deno.Signal, () => void> = new Map();

  /** Use {@link launchWorkers}. */
  constructor(children: { name: string; child: Deno.ChildProcess }[], grace: number) {
    this.#children = children.map((c) => c.child);
    this.workers = children.map(({ name, child }) => ({ name, pid: child.pid, status: child.status }));
    this.#grace = grace;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const handler = () => {
        this.#killAll("SIGTERM");
        Deno.exit(signal === "SIGINT" ? 130 : 143);
      };
      this.#onSignal.set(signal, handler);
      Deno.addSignalListener(signal, handler);
    }
    globalThis.addEventListener("unload", this.#onUnload);
  }

  #onUnload = () => this.#killAll("SIGTERM");

  /** Sends `signal` to every child; after SIGTERM also SIGCONT, so a stopped child can act on it. */
  #killAll(signal: Deno.Signal): void {
    for (const child of this.#children) {
      for (const s of signal === "SIGTERM" ? ["SIGTERM", "SIGCONT"] as const : [signal]) {
        try {
          child.kill(s);
        } catch {
          // Already exited.
        }
      }
    }
  }

  /** SIGTERM to every worker, SIGKILL after the grace, and waits for all to exit. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const [signal, handler] of this.#onSignal) Deno.removeSignalListener(signal, handler);
    globalThis.removeEventListener("unload", this.#onUnload);
    this.#killAll("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const all = Promise.all(this.workers.map((w) => w.status));
    const late = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), this.#grace)),
    ]);
    clearTimeout(timer);
    if (late) this.#killAll("SIGKILL");
    await all;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Spawns the workers of a job on this machine. */
export async function launchWorkers(opts: LaunchOptions): Promise<LocalWorkers> {
  const setpriv = await findSetpriv();
  const gpus = opts.gpus;
  const count = gpus ? gpus.length : opts.count;
  const children: { name: string; child: Deno.ChildProcess }[] = [];
  for (let i = 0; i < count; i++) {
    const name = `w${i}`;
    const gpu = gpus?.[i];
    const args = [
      "run",
      "-A",
      opts.entry ?? WORKER_MAIN,
      "--nats",
      opts.url,
      "--name",
      name,
      "--backend",
      opts.backend,
      "--job",
      opts.job,
      "--quiet",
      ...(gpu === undefined ? [] : ["--gpu", String(gpu)]),
      ...(opts.extraArgs?.[i] ?? []),
    ];
    const env: Record<string, string> = {
      ...opts.env,
      ...(gpu === undefined ? {} : { CUDA_VISIBLE_DEVICES: String(gpu) }),
    };
    const [command, commandArgs] = setpriv
      ? [setpriv, ["--pdeathsig", "TERM", "--", Deno.execPath(), ...args]]
      : [Deno.execPath(), args];
    const child = new Deno.Command(command, {
      args: commandArgs,
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    children.push({ name, child });
  }
  return new LocalWorkers(children, opts.stopGraceMs ?? 3000);
}

async function findSetpriv(): Promise<string | undefined> {
  for (const path of ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}
