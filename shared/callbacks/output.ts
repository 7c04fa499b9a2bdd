/**
 * Where callbacks send text. Keras prints action messages with `io_utils.print_msg` (stdout) and
 * problems with `warnings.warn` (stderr); both are injectable so tests and embedding programs can
 * capture them.
 */

/** Receives one message (without a trailing newline), like Keras `io_utils.print_msg`. */
export type PrintFn = (message: string) => void;

/** Receives one warning, like Python `warnings.warn`. */
export type WarnFn = (message: string) => void;

/** Default {@link PrintFn}: `console.log`. */
export const defaultPrint: PrintFn = (message) => console.log(message);

/** Default {@link WarnFn}: `console.warn`. */
export const defaultWarn: WarnFn = (message) => console.warn(message);

/** Writes text (newlines included) to stdout as it is, for progress bars that redraw in place. */
export function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
}
