/**
 * `deno task example NAME [--workers N] [--quick] [--out DIR] [--seed N]`: runs one of the Keras
 * chapter's examples, or one of the two text models (a bidirectional LSTM classifier and a transformer
 * encoder on synthetic reviews).
 */
import { didYouMean } from "../shared/model/suggest.ts";
import { type ExampleOptions, parseExampleArgs, USAGE } from "./options.ts";

/** The examples by name, each loaded only when run (`fashion-mnist` finds `fashion_mnist` too). */
export const EXAMPLES: Readonly<
  Record<string, () => Promise<{ main(opts: ExampleOptions): Promise<void> }>>
> = {
  fashion_mnist: () => import("./fashion_mnist.ts"),
  multi_input: () => import("./multi_input.ts"),
  learning_curves: () => import("./learning_curves.ts"),
  lr_schedule: () => import("./lr_schedule.ts"),
  regularization: () => import("./regularization.ts"),
  save_resume: () => import("./save_resume.ts"),
  tensorboard: () => import("./tensorboard.ts"),
  common_mistakes: () => import("./common_mistakes.ts"),
  text_classifier: () => import("./text_classifier.ts"),
  transformer_encoder: () => import("./transformer_encoder.ts"),
};

const LIST = `Examples: ${Object.keys(EXAMPLES).join(", ")}`;

/** The example called `name`, spelt with `_` (as the files are) or `-` (as `train --example` is). */
export function findExample(name: string): (typeof EXAMPLES)[string] | undefined {
  return EXAMPLES[name.replaceAll("-", "_")];
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseExampleArgs(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${LIST}`);
    Deno.exit(2);
  }
  if (parsed.help) {
    console.log(`${USAGE}\n\n${LIST}`);
    Deno.exit(0);
  }
  const load = parsed.name === undefined ? undefined : findExample(parsed.name);
  if (!load) {
    const what = parsed.name === undefined ? "no example name given" : `unknown example "${parsed.name}"`;
    const hint = parsed.name === undefined ? "" : didYouMean(parsed.name, Object.keys(EXAMPLES));
    console.error(`error: Cannot run an example as ${what}.${hint}\n\n${USAGE}\n\n${LIST}`);
    Deno.exit(2);
  }
  const example = await load();
  await example.main(parsed.options);
}
