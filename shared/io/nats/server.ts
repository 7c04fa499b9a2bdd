/**
 * A private `nats-server` child process on a free loopback port, for local runs and tests.
 *
 * The server listens on 127.0.0.1 only. Its configuration file lives in a fresh temporary directory,
 * removed by {@link NatsServer.stop}. The child is tied to the parent three ways: `stop()` /
 * `await using`, an `unload` listener (normal exit of the parent), and, where util-linux `setpriv` is
 * installed, a parent-death signal (the kernel sends SIGTERM to the server when the parent dies,
 * even by SIGKILL). Without `setpriv`, a parent killed by a signal leaves the server running.
 *
 * @module
 */

/** Largest payload the generated configuration allows by default (the server's own warning level). */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;
/** Per-connection pending-bytes limit of the generated configuration (nats-server's own cap). */
export const DEFAULT_MAX_PENDING = 64 * 1024 * 1024;

const LOG_LINES_KEPT = 200;
const LISTEN_PATTERN = /Listening for client connections on [^\s]*:(\d+)/;
const READY_PATTERN = /Server is ready/;
const ADDRESS_IN_USE_PATTERN = /address already in use/i;
const INSTALL_HINT =
  "install it with `apt-get install -y nats-server` (or `deno task setup`), or pass `binary`";

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /**
   * Largest message the server accepts, in bytes. Above 8 MiB the server logs a warning; it can
   * not exceed `maxPending`.
   * @default {DEFAULT_MAX_PAYLOAD} (8 MiB)
   */
  maxPayload?: number;
  /**
   * Bytes the server may hold for one slow client before disconnecting it as a slow consumer.
   * @default {DEFAULT_MAX_PENDING} (64 MiB)
   */
  maxPending?: number;
  /**
   * Seconds a write to a client may block before the server drops it as a slow consumer. Workers
   * in a long synchronous step do not read their socket, so this must exceed the longest step.
   * @default 60
   */
  writeDeadlineSeconds?: number;
  /** Enables JetStream with its store in the temporary directory. @default false */
  jetstream?: boolean;
  /**
   * Complete configuration file text, used instead of the generated one (`maxPayload`,
   * `maxPending`, `writeDeadlineSeconds`, `jetstream` and `extraConfig` must then be absent).
   * Host and port always come from the command line.
   */
  configText?: string;
  /** Lines appended to the generated configuration. */
  extraConfig?: string;
  /** Path or name of the `nats-server` executable. @default searched in PATH, then /usr/sbin */
  binary?: string;
  /** Milliseconds to wait for "Server is ready". @default 10000 */
  startTimeoutMs?: number;
  /** Milliseconds between SIGTERM and SIGKILL in {@link NatsServer.stop}. @default 5000 */
  stopGraceMs?: number;
  /** Receives every log line of the server (stderr), e.g. to surface slow-consumer warnings. */
  onLog?: (line: string) => void;
  /**
   * Cancels a start in progress; once started, aborting stops the server (as {@link NatsServer.stop}).
   */
  signal?: AbortSignal;
}

/** A running private server; see {@link startNatsServer}. */
export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Process id of the current server process (changes on {@link restart}). */
  readonly pid: number;
  /** Temporary directory holding the configuration (and the JetStream store). */
  readonly dir: string;
  /** Exit status of the current server process; settles when it exits. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Stops the server (SIGTERM, then SIGKILL after the grace) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process and starts a new one on the same port and directory. */
  restart(): Promise<void>;
  /** The last log lines of the server, oldest first. */
  recentLog(): string[];
}

/**
 * Starts a private `nats-server` on 127.0.0.1 with a port chosen by the server itself (`-p -1`,
 * read back from its log, so no port race), and resolves once it logs "Server is ready".
 *
 * @example
 * ```ts
 * await using server = await startNatsServer({ maxPayload: 16 * 1024 * 1024 });
 * const nc = await connect({ servers: server.url });
 * ```
 */
export async function startNatsServer(
  options: NatsServerOptions = {},
): Promise<NatsServer> {
  const configText = buildConfig(options);
  const binary = await resolveBinary(options.binary);
  const setpriv = await findExecutable("setpriv");
  const dir = await Deno.makeTempDir({ prefix: "shoal-nats-" });
  try {
    const configPath = `${dir}/nats.conf`;
    await Deno.writeTextFile(configPath, configText.replaceAll("$STORE_DIR", `${dir}/jetstream`));
    const server = new NatsServer({ binary, setpriv, dir, configPath, options });
    await server.start(-1);
    return server;
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

interface ServerParts {
  binary: string;
  setpriv: string | undefined;
  dir: string;
  configPath: string;
  options: NatsServerOptions;
}

interface RunningProcess {
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  log: string[];
  logDone: Promise<void>;
}

/** The handle returned by {@link startNatsServer}. */
export class NatsServer implements NatsServerHandle, AsyncDisposable {
  readonly dir: string;
  #parts: ServerParts;
  #port = 0;
  #process: RunningProcess | undefined;
  #stopped = false;
  #onUnload = () => this.#killNow();
  #onAbort = () => {
    this.stop().catch((error) =>
      console.error(`Stopping the NATS server on port ${this.#port} failed:`, error)
    );
  };

  /** Use {@link startNatsServer}. */
  constructor(parts: ServerParts) {
    this.#parts = parts;
    this.dir = parts.dir;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number {
    return this.#current().child.pid;
  }

  get exited(): Promise<Deno.CommandStatus> {
    return this.#current().status;
  }

  recentLog(): string[] {
    return [...(this.#process?.log ?? [])];
  }

  /** Spawns the process on `port` (-1: let the server pick) and waits until it is ready. */
  async start(port: number): Promise<void> {
    const { signal } = this.#parts.options;
    signal?.throwIfAborted();
    const running = this.#spawn(port);
    this.#process = running;
    globalThis.addEventListener("unload", this.#onUnload);
    try {
      this.#port = await this.#waitReady(running);
    } catch (error) {
      await this.#stopProcess();
      throw error;
    }
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#parts.options.signal?.removeEventListener("abort", this.#onAbort);
    await this.#stopProcess();
    await Deno.remove(this.dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  async restart(): Promise<void> {
    if (this.#stopped) {
      throw new Error(`Cannot restart the NATS server on port ${this.#port} as it was stopped`);
    }
    this.#parts.options.signal?.removeEventListener("abort", this.#onAbort);
    await this.#stopProcess();
    const deadline = Date.now() + (this.#parts.options.startTimeoutMs ?? 10_000);
    for (;;) {
      try {
        await this.start(this.#port);
        return;
      } catch (error) {
        const inUse = (this.#process?.log ?? []).some((line) => ADDRESS_IN_USE_PATTERN.test(line));
        if (!inUse || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #current(): RunningProcess {
    if (!this.#process) throw new Error("Cannot use the NATS server as it has not started");
    return this.#process;
  }

  #spawn(port: number): RunningProcess {
    const { binary, setpriv, configPath, options } = this.#parts;
    const serverArgs = ["-c", configPath, "-a", "127.0.0.1", "-p", String(port)];
    const [command, args] = setpriv
      ? [setpriv, ["--pdeathsig", "TERM", "--", binary, ...serverArgs]]
      : [binary, serverArgs];
    const child = new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "piped" })
      .spawn();
    const log: string[] = [];
    const logDone = readLines(child.stderr, (line) => {
      log.push(line);
      if (log.length > LOG_LINES_KEPT) log.shift();
      options.onLog?.(line);
    });
    return { child, status: child.status, log, logDone };
  }

  /** Resolves with the listening port once the log says "Server is ready". */
  async #waitReady(running: RunningProcess): Promise<number> {
    const { startTimeoutMs = 10_000, signal } = this.#parts.options;
    const deadline = Date.now() + startTimeoutMs;
    let exited = false;
    running.status.then(() => exited = true);
    for (;;) {
      const port = readyPort(running.log);
      if (port !== undefined) return port;
      signal?.throwIfAborted();
      if (exited || Date.now() > deadline) {
        await running.logDone.catch(() => {});
        const what = exited ? "exited before it was ready" : `was not ready within ${startTimeoutMs} ms`;
        throw new Error(
          `nats-server (${this.#parts.binary}) ${what}; its log ends with:\n${
            running.log.slice(-15).join("\n")
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async #stopProcess(): Promise<void> {
    const running = this.#process;
    if (!running) return;
    globalThis.removeEventListener("unload", this.#onUnload);
    const grace = this.#parts.options.stopGraceMs ?? 5000;
    trySignal(running.child, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = await Promise.race([
      running.status.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), grace)),
    ]);
    clearTimeout(timer);
    if (killed) trySignal(running.child, "SIGKILL");
    await running.status;
    await running.logDone.catch(() => {});
  }

  #killNow(): void {
    if (this.#process) trySignal(this.#process.child, "SIGTERM");
  }
}

function readyPort(log: readonly string[]): number | undefined {
  if (!log.some((line) => READY_PATTERN.test(line))) return undefined;
  for (const line of log) {
    const match = LISTEN_PATTERN.exec(line);
    if (match?.[1]) return Number(match[1]);
  }
  return undefined;
}

function trySignal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + text).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  if (rest) onLine(rest);
}

function buildConfig(options: NatsServerOptions): string {
  const generatedKeys = [
    "maxPayload",
    "maxPending",
    "writeDeadlineSeconds",
    "jetstream",
    "extraConfig",
  ] as const;
  if (options.configText !== undefined) {
    const clash = generatedKeys.filter((key) => options[key] !== undefined);
    if (clash.length > 0) {
      throw new TypeError(
        `Cannot combine configText with ${clash.join(", ")}: put those settings in configText instead`,
      );
    }
    return options.configText;
  }
  const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const writeDeadline = options.writeDeadlineSeconds ?? 60;
  if (!Number.isInteger(maxPending) || maxPending < 1 || maxPending > DEFAULT_MAX_PENDING) {
    throw new RangeError(
      `Cannot start nats-server as maxPending must be an integer in [1, ${DEFAULT_MAX_PENDING}]: current value is ${maxPending}`,
    );
  }
  if (!Number.isInteger(maxPayload) || maxPayload < 1 || maxPayload > maxPending) {
    throw new RangeError(
      `Cannot start nats-server as maxPayload must be an integer in [1, maxPending=${maxPending}]: current value is ${maxPayload}`,
    );
  }
  if (!(writeDeadline > 0)) {
    throw new RangeError(
      `Cannot start nats-server as writeDeadlineSeconds must be > 0: current value is ${writeDeadline}`,
    );
  }
  const lines = [
    `max_payload: ${maxPayload}`,
    `max_pending: ${maxPending}`,
    `write_deadline: "${writeDeadline}s"`,
  ];
  if (options.jetstream) lines.push(`jetstream { store_dir: "$STORE_DIR" }`);
  if (options.extraConfig) lines.push(options.extraConfig);
  return lines.join("\n") + "\n";
}

async function resolveBinary(binary: string | undefined): Promise<string> {
  const found = await findExecutable(binary ?? "nats-server");
  if (found) return found;
  throw new Deno.errors.NotFound(
    binary === undefined
      ? `Cannot start a NATS server as nats-server is not in PATH, /usr/sbin or /usr/local/bin: ${INSTALL_HINT}`
      : `Cannot start a NATS server as the binary does not exist: current value is ${binary}; ${INSTALL_HINT}`,
  );
}

/** Finds an executable by path, or by name in PATH and the usual sbin/bin directories. */
async function findExecutable(name: string): Promise<string | undefined> {
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch {
    // No env permission: only the fixed directories are searched.
  }
  const candidates = name.includes("/") ? [name] : [
    ...path.split(":").filter(Boolean),
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/bin",
    "/usr/local/sbin",
  ].map((dir) => `${dir}/${name}`);
  for (const candidate of candidates) {
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}
