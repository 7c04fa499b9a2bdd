/**
 * Memory shared between the coordinator and a worker on the same host: a file in /dev/shm mapped into
 * both processes (libc `mmap` through Deno FFI). Weights and gradients are written there with one
 * copy each and only a small frame goes through the socket, instead of megabytes through the kernel
 * in 64 KiB pieces with a process wake-up each. Linux and glibc only; callers keep sending bodies on
 * the socket where this module cannot be used.
 *
 * The file is created with mode 0600 by the process that owns the region. Its name carries the owner's
 * pid: creating a region removes the files of owners that died without removing theirs. A region both
 * sides mapped needs no name any more ({@link SharedRegion.unlink}); otherwise the owner removes the
 * file when it closes the region. A view handed out by {@link SharedRegion.bytes} must not be used
 * after {@link SharedRegion.close}: the memory is unmapped.
 *
 * @module
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
/** Where regions live: a tmpfs, so that nothing is written back to a disk. */
export const SHARED_MEMORY_DIR = "/dev/shm";

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function openLibc(): Deno.DynamicLibrary<typeof SYMBOLS> {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return libc;
}

/** True when regions can be created here (Linux, glibc, FFI allowed, /dev/shm present). */
export function sharedMemoryAvailable(): boolean {
  try {
    openLibc();
    return Deno.statSync(SHARED_MEMORY_DIR).isDirectory;
  } catch {
    return false;
  }
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function errno(lib: Deno.DynamicLibrary<typeof SYMBOLS>): number {
  const pointer = lib.symbols.__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : -1;
}

/** A mapped region; see the module doc. */
export class SharedRegion {
  /** The mapped memory. */
  readonly bytes: Uint8Array;
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #pointer: Deno.PointerObject;
  #linked: boolean;
  #closed = false;

  private constructor(
    readonly path: string,
    lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    pointer: Deno.PointerObject,
    size: number,
    owner: boolean,
  ) {
    this.#lib = lib;
    this.#pointer = pointer;
    this.#linked = owner;
    this.bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size));
  }

  /** Creates a region of `size` bytes under a fresh name starting with `prefix`; this process owns it. */
  static create(prefix: string, size: number): SharedRegion {
    removeOrphans();
    const path = `${SHARED_MEMORY_DIR}/${prefix}-p${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    return SharedRegion.#map(path, size, O_RDWR | O_CREAT | O_EXCL, true);
  }

  /** Maps the region another process created at `path`, which must hold `size` bytes. */
  static open(path: string, size: number): SharedRegion {
    if (!path.startsWith(`${SHARED_MEMORY_DIR}/shoal-`) || path.includes("..")) {
      throw new Error(`Cannot map ${path}: a Shoal region lives in ${SHARED_MEMORY_DIR}/shoal-*`);
    }
    const actual = Deno.statSync(path).size;
    if (actual !== size) throw new Error(`Cannot map ${path}: it holds ${actual} bytes, not ${size}`);
    return SharedRegion.#map(path, size, O_RDWR, false);
  }

  static #map(path: string, size: number, flags: number, owner: boolean): SharedRegion {
    const lib = openLibc();
    const fd = lib.symbols.open(cString(path), flags, 0o600);
    if (fd < 0) throw new Error(`Cannot open ${path}: errno ${errno(lib)}`);
    try {
      if (owner && lib.symbols.ftruncate(fd, BigInt(size)) !== 0) {
        throw new Error(`Cannot size ${path} to ${size} bytes: errno ${errno(lib)}`);
      }
      const pointer = lib.symbols.mmap(null, BigInt(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      if (pointer === null || Deno.UnsafePointer.value(pointer) === 0xffffffffffffffffn) {
        throw new Error(`Cannot map ${path}: errno ${errno(lib)}`);
      }
      return new SharedRegion(path, lib, pointer, size, owner);
    } catch (error) {
      if (owner) lib.symbols.unlink(cString(path));
      throw error;
    } finally {
      lib.symbols.close(fd);
    }
  }

  /** Removes the region's file (the owner's); the mappings stay valid. Idempotent. */
  unlink(): void {
    if (!this.#linked) return;
    this.#linked = false;
    this.#lib.symbols.unlink(cString(this.path));
  }

  /** Unmaps the region (and removes its file when this process created it). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lib.symbols.munmap(this.#pointer, BigInt(this.bytes.byteLength));
    this.unlink();
  }
}

/** Removes the region files whose owner (the pid in the name) is no longer running. */
function removeOrphans(): void {
  try {
    for (const entry of Deno.readDirSync(SHARED_MEMORY_DIR)) {
      const pid = /^shoal-.*-p(\d+)-[0-9a-f]{8}$/.exec(entry.name)?.[1];
      if (pid === undefined || pid === String(Deno.pid)) continue;
      try {
        Deno.statSync(`/proc/${pid}`);
      } catch {
        Deno.removeSync(`${SHARED_MEMORY_DIR}/${entry.name}`);
      }
    }
  } catch {
    // Another process removed it first, or the folder cannot be listed: nothing to tidy.
  }
}
