/**
 * glibc malloc settings for processes that move multi-megabyte NATS messages every step: serve large
 * buffers from the heap and keep freed heap memory mapped, so the buffers each step allocates
 * (nats.js packs every publish into a new buffer, and a received message into another) reuse pages
 * that are already faulted in instead of fresh `mmap` pages. The first touch of fresh pages measured
 * ~6 ms per 2 MB on the 2-core loopback test machine; these settings took a bare 2.15 MB NATS round
 * from ~31 to ~21 ms there.
 *
 * Set with `mallopt` through Deno FFI at start-up, so every entry point (the CLI, a library `fit`, a
 * worker in a container) gets them without environment variables. A process whose environment
 * already sets `MALLOC_*` or `GLIBC_TUNABLES`, or `SHOAL_ALLOCATOR=default`, keeps glibc's choice.
 *
 * @module
 */

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3;

/** The values: 32 MiB mmap threshold, 128 MiB trim threshold, 64 MiB top pad. */
export const ALLOCATOR_SETTINGS: Readonly<Record<"mmapThreshold" | "trimThreshold" | "topPad", number>> = {
  mmapThreshold: 32 * 1024 * 1024,
  trimThreshold: 128 * 1024 * 1024,
  topPad: 64 * 1024 * 1024,
};

/** What {@link tuneAllocator} did, for logs. */
export type AllocatorTuning = "tuned" | `kept (${string})` | `not tuned (${string})`;

/**
 * Applies {@link ALLOCATOR_SETTINGS} to this process's glibc allocator. Never throws: without FFI
 * permission or glibc (musl) the process runs with the defaults, only slower.
 */
export function tuneAllocator(): AllocatorTuning {
  try {
    const env = Deno.env.toObject();
    if (env.SHOAL_ALLOCATOR === "default") return "kept (SHOAL_ALLOCATOR=default)";
    if (Object.keys(env).some((k) => k.startsWith("MALLOC_") || k === "GLIBC_TUNABLES")) {
      return "kept (the environment sets malloc options)";
    }
  } catch {
    // No env permission: nothing to respect.
  }
  let lib: Deno.DynamicLibrary<{ mallopt: { parameters: ["i32", "i32"]; result: "i32" } }>;
  try {
    lib = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
  } catch (error) {
    return `not tuned (${error instanceof Error ? error.message : String(error)})`;
  }
  try {
    const settings: [number, number][] = [
      [M_MMAP_THRESHOLD, ALLOCATOR_SETTINGS.mmapThreshold],
      [M_TRIM_THRESHOLD, ALLOCATOR_SETTINGS.trimThreshold],
      [M_TOP_PAD, ALLOCATOR_SETTINGS.topPad],
    ];
    const refused = settings.filter(([param, value]) => lib.symbols.mallopt(param, value) !== 1);
    return refused.length === 0 ? "tuned" : `not tuned (mallopt refused parameter ${refused[0]![0]})`;
  } finally {
    lib.close();
  }
}
