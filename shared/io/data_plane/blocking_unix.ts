/**
 * A data-plane connection over a Unix socket that the calling thread reads and writes with blocking
 * system calls (libc through Deno FFI), for code that must wait without returning to the event loop:
 * TF.js runs BatchNormalization's forward and backward passes synchronously, and each needs the other
 * slices' partial statistics. Waiting here costs two process wake-ups per exchange; a helper thread
 * with an async socket costs several more thread hand-offs, which on a loaded machine dominate.
 *
 * Frames, handshake and limits are those of the async connection (frames.ts, handshake.ts). Linux
 * and glibc only; callers fall back to the helper thread where `libc.so.6` cannot be opened.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type Body, bodyOffset, bodyParts, encodeHead, PREFIX_BYTES } from "../nats/codec.ts";
import { type Frame, FrameError, readPrefix } from "./frames.ts";
import { answerChallenge, type ChannelRole, checkVerdict, HANDSHAKE_TIMEOUT_MS } from "./handshake.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_UNIX = 1, SOCK_STREAM = 1, POLLIN = 1, EINTR = 4;
/** sockaddr_un: a 2-byte family and a 108-byte path. */
const SUN_PATH_BYTES = 108;

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** libc, or why it cannot be used (not Linux/glibc, or FFI not allowed). */
function openLibc(): Deno.DynamicLibrary<typeof SYMBOLS> {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return libc;
}

/** True when blocking Unix sockets can be used in this process. */
export function blockingSocketsAvailable(): boolean {
  try {
    openLibc();
    return true;
  } catch {
    return false;
  }
}

/** A connected, authenticated Unix socket read and written with blocking calls. */
export class BlockingUnixSocket {
  readonly #fd: number;
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #pollFd = new Uint8Array(8);
  #closed = false;
  /** Largest frame body read. */
  maxBodyBytes: number;

  private constructor(fd: number, lib: Deno.DynamicLibrary<typeof SYMBOLS>, maxBodyBytes: number) {
    this.#fd = fd;
    this.#lib = lib;
    this.maxBodyBytes = maxBodyBytes;
    new DataView(this.#pollFd.buffer).setInt32(0, fd, true);
    new DataView(this.#pollFd.buffer).setInt16(4, POLLIN, true);
  }

  /**
   * Connects to the coordinator's socket at `path` and proves the job secret (handshake.ts). Throws a
   * `DataPlaneAuthError` when the handshake fails, an `Error` naming the path when it cannot connect.
   */
  static connect(
    path: string,
    opts: { job: string; secret: string; worker: string; role: ChannelRole; maxBodyBytes: number },
  ): BlockingUnixSocket {
    const lib = openLibc();
    const fd = lib.symbols.socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) throw new Error(`Cannot create a Unix socket: errno ${errno(lib)}`);
    const address = new Uint8Array(2 + SUN_PATH_BYTES);
    new DataView(address.buffer).setUint16(0, AF_UNIX, true);
    const encoded = new TextEncoder().encode(path);
    if (encoded.length >= SUN_PATH_BYTES) {
      lib.symbols.close(fd);
      throw new Error(
        `Cannot connect to ${path}: a Unix socket path has at most ${SUN_PATH_BYTES - 1} bytes`,
      );
    }
    address.set(encoded, 2);
    if (lib.symbols.connect(fd, address, address.length) !== 0) {
      const code = errno(lib);
      lib.symbols.close(fd);
      throw new Error(`Cannot connect to unix:${path}: errno ${code}`);
    }
    const socket = new BlockingUnixSocket(fd, lib, 0);
    try {
      socket.#handshake(opts);
    } catch (error) {
      socket.close();
      throw error;
    }
    socket.maxBodyBytes = opts.maxBodyBytes;
    return socket;
  }

  /** The worker's side of the handshake of handshake.ts, with blocking reads. */
  #handshake(opts: { job: string; secret: string; worker: string; role: ChannelRole }): void {
    const peer = "the coordinator's Unix socket";
    const { auth, nonce } = answerChallenge(this.receive(HANDSHAKE_TIMEOUT_MS)?.header, opts, peer);
    this.send(auth);
    checkVerdict(this.receive(HANDSHAKE_TIMEOUT_MS)?.header, opts, nonce, peer);
  }

  /** Writes one frame whole (blocking). */
  send(header: object, body?: Body): void {
    const parts = bodyParts(body);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    this.#writeAll(encodeHead(header, length));
    for (const part of parts) this.#writeAll(part);
  }

  /**
   * The next frame; `null` when none arrived within `timeoutMs` (the stream is then still at a frame
   * boundary). Throws a {@link FrameError} when the stream ends or breaks the format.
   */
  receive(timeoutMs: number): Frame | null {
    if (!this.#wait(timeoutMs)) return null;
    const prefix = new Uint8Array(PREFIX_BYTES);
    this.#readAll(prefix, true);
    const { headerBytes, bodyBytes } = readPrefix(prefix, this.maxBodyBytes, "from the Unix socket");
    const head = new Uint8Array(bodyOffset(headerBytes) - PREFIX_BYTES);
    this.#readAll(head, false);
    let header: unknown;
    try {
      header = JSON.parse(Buffer.from(head.buffer, 0, headerBytes).toString("utf8"));
    } catch (error) {
      throw new FrameError("Cannot read the frame as its header is not JSON", { cause: error });
    }
    const body = new Uint8Array(bodyBytes);
    this.#readAll(body, false);
    return { header, body };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lib.symbols.close(this.#fd);
  }

  /** True when a read will not block, false after `timeoutMs`. */
  #wait(timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = Math.max(0, Math.ceil(deadline - performance.now()));
      const ready = this.#lib.symbols.poll(this.#pollFd, 1n, left);
      if (ready > 0) return true;
      if (ready === 0) return false;
      if (errno(this.#lib) !== EINTR) {
        throw new FrameError(`Cannot wait on the data connection: errno ${errno(this.#lib)}`);
      }
    }
  }

  #readAll(buffer: Uint8Array, atBoundary: boolean): void {
    for (let got = 0; got < buffer.length;) {
      const n = Number(this.#lib.symbols.read(this.#fd, buffer.subarray(got), BigInt(buffer.length - got)));
      if (n > 0) {
        got += n;
      } else if (n === 0) {
        throw new FrameError(
          atBoundary && got === 0
            ? "the coordinator closed the data connection"
            : `the data connection ended inside a frame (truncated after ${got} of ${buffer.length} bytes)`,
        );
      } else if (errno(this.#lib) !== EINTR) {
        throw new FrameError(`Cannot read the data connection: errno ${errno(this.#lib)}`);
      }
    }
  }

  #writeAll(bytes: Uint8Array): void {
    for (let sent = 0; sent < bytes.length;) {
      const n = Number(this.#lib.symbols.write(this.#fd, bytes.subarray(sent), BigInt(bytes.length - sent)));
      if (n >= 0) sent += n;
      else if (errno(this.#lib) !== EINTR) {
        throw new FrameError(`Cannot write the data connection: errno ${errno(this.#lib)}`);
      }
    }
  }
}

function errno(lib: Deno.DynamicLibrary<typeof SYMBOLS>): number {
  const pointer = lib.symbols.__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : -1;
}
