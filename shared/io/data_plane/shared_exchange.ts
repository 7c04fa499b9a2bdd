/**
 * The slice exchange (BatchNormalization's partial statistics) among workers on the coordinator's
 * host, in memory they all map: each slice writes its part into its own slot and reads the others'
 * from theirs, waiting by polling the slots' tags. An exchange through the coordinator costs a round
 * trip with three process wake-ups (0.3–0.7 ms on a virtual machine); here it costs the time the
 * slowest slice takes to arrive.
 *
 * Layout (bytes): an `abortedThrough` word (the newest attempt version the coordinator gave up; −1
 * none), then two rings of {@link MAX_SLICES} slots. A slot is a tag word, a length word, 8 bytes of
 * padding, then up to {@link MAX_PART_FLOATS} floats. Exchange `call` of an attempt uses ring
 * `call % 2`: a slice cannot write exchange c + 2 before every slice wrote c + 1, which each does only
 * after it read exchange c, so two rings never overwrite an unread part.
 *
 * A writer invalidates its slot's tag, writes the values, then publishes the tag (version and call);
 * a reader copies a part only between two reads of the expected tag, so a part rewritten meanwhile
 * (by a worker that resumed an abandoned attempt after a SIGSTOP) is read again, never torn. The tags
 * are stored with `Atomics` (sequentially consistent), which orders them with the values around them.
 *
 * @module
 */

/** Slices an exchange area holds (workers on one host beyond this use the coordinator's exchange). */
export const MAX_SLICES = 64;
/** Floats a part may hold; BatchNormalization sends 1 + 2 × channels. */
export const MAX_PART_FLOATS = 16_384;
/** Exchanges an attempt may make here (the tag holds the call in its low 12 bits). */
export const MAX_CALLS = 4096;

const HEADER_BYTES = 64;
const SLOT_HEADER_BYTES = 16;
const SLOT_BYTES = SLOT_HEADER_BYTES + 4 * MAX_PART_FLOATS;
const RINGS = 2;
/** Bytes of an exchange area. */
export const SHARED_EXCHANGE_BYTES = HEADER_BYTES + RINGS * MAX_SLICES * SLOT_BYTES;

const INVALID = -1;
/** Polls between checks of the abort word, the stop flag and the deadline. */
const CHECK_EVERY = 256;

/** Why waiting for the other slices' parts ended early. */
export class SharedExchangeAbortedError extends Error {
  override name = "SharedExchangeAbortedError";
}

/** What a waiting slice checks while it polls. */
export interface SharedExchangeWait {
  /** Epoch-free deadline (`performance.now()`) after which the wait throws. */
  deadline: number;
  /** True when the process is asked to stop. */
  stopRequested?: () => boolean;
  /** Gives the processor to other threads while waiting long (e.g. `sched_yield`). */
  yieldProcessor?: () => void;
}

/** The tag of exchange `call` of attempt `version`. */
function tagOf(version: number, call: number): number {
  return ((version % 524_288) * MAX_CALLS + call) | 0;
}

/** An exchange area over `bytes` (a mapped region of {@link SHARED_EXCHANGE_BYTES}). */
export class SharedExchangeArea {
  readonly #words: Int32Array;
  readonly #floats: Float32Array;

  constructor(bytes: Uint8Array) {
    if (bytes.byteLength < SHARED_EXCHANGE_BYTES || bytes.byteOffset % 16 !== 0) {
      throw new RangeError(
        `Cannot use ${bytes.byteLength} bytes at offset ${bytes.byteOffset} as an exchange area: ` +
          `it needs ${SHARED_EXCHANGE_BYTES} bytes on a 16-byte boundary`,
      );
    }
    this.#words = new Int32Array(bytes.buffer, bytes.byteOffset, SHARED_EXCHANGE_BYTES / 4);
    this.#floats = new Float32Array(bytes.buffer, bytes.byteOffset, SHARED_EXCHANGE_BYTES / 4);
  }

  /** Marks a new area: no attempt aborted, every slot empty. The coordinator calls it once. */
  reset(): void {
    Atomics.store(this.#words, 0, INVALID);
    for (let r = 0; r < RINGS; r++) {
      for (let k = 0; k < MAX_SLICES; k++) Atomics.store(this.#words, this.#slotWord(r, k), INVALID);
    }
  }

  /** Wakes every slice of attempts up to `version` (they throw {@link SharedExchangeAbortedError}). */
  abortThrough(version: number): void {
    for (;;) {
      const current = Atomics.load(this.#words, 0);
      if (current >= version) return;
      if (Atomics.compareExchange(this.#words, 0, current, version) === current) return;
    }
  }

  /** True when exchanges of `slices` slices with parts of `length` floats and `call` fit here. */
  static fits(slices: number, length: number, call: number): boolean {
    return slices <= MAX_SLICES && length <= MAX_PART_FLOATS && call < MAX_CALLS;
  }

  /**
   * Writes slice `slice`'s part of exchange `call` of attempt `version`, waits for the other slices'
   * and returns all parts in slice order (its own as given, the others copied).
   */
  gather(
    version: number,
    call: number,
    slice: number,
    slices: number,
    part: Float32Array,
    wait: SharedExchangeWait,
  ): Float32Array[] {
    if (!SharedExchangeArea.fits(slices, part.length, call) || slice >= slices) {
      throw new RangeError(
        `Cannot exchange ${part.length} floats as slice ${slice} of ${slices} in call ${call} here: ` +
          `the area holds ${MAX_SLICES} slices of ${MAX_PART_FLOATS} floats and ${MAX_CALLS} calls`,
      );
    }
    const ring = call % RINGS;
    const tag = tagOf(version, call);
    this.#checkAborted(version);
    const own = this.#slotWord(ring, slice);
    Atomics.store(this.#words, own, INVALID);
    this.#words[own + 1] = part.length;
    this.#floats.set(part, own + SLOT_HEADER_BYTES / 4);
    Atomics.store(this.#words, own, tag);

    const parts: (Float32Array | undefined)[] = Array(slices);
    parts[slice] = part;
    let missing = slices - 1;
    for (let polls = 1; missing > 0; polls++) {
      for (let k = 0; k < slices; k++) {
        if (parts[k]) continue;
        const got = this.#read(ring, k, tag, part.length);
        if (got) {
          parts[k] = got;
          missing--;
        }
      }
      if (missing > 0 && polls % CHECK_EVERY === 0) {
        this.#checkAborted(version);
        if (wait.stopRequested?.()) {
          throw new SharedExchangeAbortedError(`the worker is stopping during exchange ${call}`);
        }
        if (performance.now() > wait.deadline) {
          throw new Error(
            `Cannot finish slice ${slice} of weights version ${version}: the other slices' parts of ` +
              `exchange ${call} did not arrive in time`,
          );
        }
        wait.yieldProcessor?.();
      }
    }
    return parts as Float32Array[];
  }

  /** Slot `slice`'s part when it holds exchange `tag` with `length` floats, read between two tag reads. */
  #read(ring: number, slice: number, tag: number, length: number): Float32Array | undefined {
    const at = this.#slotWord(ring, slice);
    if (Atomics.load(this.#words, at) !== tag) return undefined;
    if (this.#words[at + 1] !== length) {
      throw new RangeError(
        `Cannot finish the exchange: slice ${slice} sent ${
          this.#words[at + 1]
        } values, this slice ${length}: ` +
          "the workers run different models",
      );
    }
    const start = at + SLOT_HEADER_BYTES / 4;
    const copy = this.#floats.slice(start, start + length);
    return Atomics.load(this.#words, at) === tag ? copy : undefined;
  }

  #checkAborted(version: number): void {
    if (Atomics.load(this.#words, 0) >= version) {
      throw new SharedExchangeAbortedError(
        `The coordinator aborted the step attempt with weights version ${version}`,
      );
    }
  }

  /** Index (in words) of the tag of slot (`ring`, `slice`). */
  #slotWord(ring: number, slice: number): number {
    return (HEADER_BYTES + (ring * MAX_SLICES + slice) * SLOT_BYTES) / 4;
  }
}
