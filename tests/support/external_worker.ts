/** Worker processes started by tests as a user would start them, with their stderr kept. */
import { WORKER_MAIN } from "../../coordinator/launcher.ts";
import { userEnv } from "./user_env.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Sends `sig` to `pid`, if it still runs. */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Pid of the spawned worker named `name` (a child of this process). */
export function workerPid(name: string): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (ppid === Deno.pid && cmd.some((a) => a.endsWith("worker/main.ts")) && cmd.includes(name)) {
        return Number(entry.name);
      }
    } catch {
      // Exited while listing.
    }
  }
  throw new Error(`No worker process named ${name} is a child of this process`);
}

/**
 * An external worker process (`deno run worker/main.ts --nats URL --name NAME`), its stderr kept.
 * `extraArgs` go to the worker, `denoFlags` to `deno run` (e.g. `--deny-net=HOST:PORT` for a worker
 * that cannot reach that address).
 */
export class ExternalWorker {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;

  constructor(readonly name: string, url: string, extraArgs: string[] = [], denoFlags: string[] = []) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...denoFlags, WORKER_MAIN, "--nats", url, "--name", name, ...extraArgs],
      cwd: ROOT,
      env: userEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#reading = (async () => {
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Waits until a stderr line matches. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => pattern.test(l));
      if (line) return line;
      if (Date.now() > deadline) {
        throw new Error(`Worker ${this.name} printed no line matching ${pattern}:\n${this.lines.join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends `sig` (default SIGTERM) and waits for the exit and the end of its output. */
  async stop(sig: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    signal(this.pid, sig);
    signal(this.pid, "SIGCONT");
    const status = await this.#child.status;
    await this.#reading;
    return status;
  }
}
