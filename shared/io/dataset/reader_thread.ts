/**
 * The body of a {@link PrefetchingReader}'s thread: opens the rows a spec names and reads what it is
 * asked for, one request after another, handing each result's buffers over without a copy.
 *
 * @module
 */
import { openSpec } from "./dataset.ts";
import type { ReaderReply, ReaderRequest } from "./prefetch.ts";
import type { RowArray, Rows, RowSource } from "./rows.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<ReaderRequest>) => void) | null;
  postMessage(message: ReaderReply, transfer?: Transferable[]): void;
};

let source: RowSource | undefined;
/** Why the files could not be opened here: every read answers it. */
let openError: unknown;

/** The array itself when it owns its whole buffer (file readers return such), else a copy that does. */
function own(a: RowArray): RowArray {
  const whole = a.data.byteOffset === 0 && a.data.byteLength === a.data.buffer.byteLength;
  return whole ? a : { data: a.data.slice(), shape: a.shape };
}

function buffers(rows: Rows): ArrayBuffer[] {
  return [...rows.inputs, ...(rows.y ? [rows.y] : [])].map((a) => a.data.buffer as ArrayBuffer);
}

scope.onmessage = (event) => {
  const request = event.data;
  try {
    if (request.kind === "open") {
      try {
        source = openSpec(request.spec);
      } catch (error) {
        openError = error;
      }
      return;
    }
    if (!source) throw openError;
    const rows = request.kind === "gather"
      ? source.gather(request.indices)
      : source.range(request.start, request.end);
    const owned: Rows = { inputs: rows.inputs.map(own), y: rows.y ? own(rows.y) : null };
    scope.postMessage({ id: request.id, rows: owned }, buffers(owned));
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    scope.postMessage({
      id: request.kind === "open" ? -1 : request.id,
      error: { name: e.name, message: e.message, file: (e as { file?: string }).file },
    });
  }
};
