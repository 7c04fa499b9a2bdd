/**
 * A synthetic movie-review dataset for the text examples, made here because no text corpus ships with
 * Shoal's dependencies (Keras's IMDB download is not reachable offline). Each review is 5 to 24 words:
 * filler words ("the", "plot", "was", and 200 rarer ones) with three opinions placed among them, each
 * a sentiment word ("great", "boring", …) optionally negated by the word right before it ("not good",
 * "never dull"). The label is 1 when the opinions add up positive, a negated word counting against
 * its sign: so word order matters, and a bag of words cannot reach full accuracy.
 *
 * Reviews are encoded as Keras's `TextVectorization` and `pad_sequences` would give them: ids with 0
 * for padding and 1 for an unknown word, padded at the front to {@link MAX_LEN}.
 */
import { tf } from "../mod.ts";

const POSITIVE = ["good", "great", "excellent", "wonderful", "enjoyable", "brilliant", "fun", "superb"];
const NEGATIVE = ["bad", "awful", "boring", "terrible", "dull", "poor", "weak", "horrible"];
const NEGATORS = ["not", "never", "hardly"];
const COMMON = [
  "the",
  "movie",
  "film",
  "plot",
  "acting",
  "was",
  "is",
  "and",
  "a",
  "story",
  "really",
  "very",
  "it",
  "this",
  "but",
  "characters",
  "ending",
  "music",
  "i",
  "found",
];
const RARE = Array.from({ length: 200 }, (_, i) => `word${i}`);

/** Reviews are padded (or cut) to this many tokens. */
export const MAX_LEN = 24;

/** The vocabulary in id order: `""` (padding), `"[UNK]"`, then every word. */
export const VOCABULARY: readonly string[] = [
  "",
  "[UNK]",
  ...COMMON,
  ...POSITIVE,
  ...NEGATIVE,
  ...NEGATORS,
  ...RARE,
];

const IDS = new Map(VOCABULARY.map((w, i) => [w, i]));

/** Word ids of `text` (lower-cased, split on spaces), padded at the front with 0 to {@link MAX_LEN}. */
export function encode(text: string): number[] {
  const ids = text.toLowerCase().split(/\s+/).filter((w) => w).map((w) => IDS.get(w) ?? 1).slice(-MAX_LEN);
  return [...Array(MAX_LEN - ids.length).fill(0), ...ids];
}

/** The words of an encoded review, padding left out. */
export function decode(ids: ArrayLike<number>): string {
  return Array.from(ids).filter((i) => i !== 0).map((i) => VOCABULARY[i] ?? "[UNK]").join(" ");
}

/** A deterministic generator of uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** One review's words and its label: filler words and three opinions, in a random order. */
function review(rand: () => number): { words: string[]; label: number } {
  const pick = (list: readonly string[]) => list[Math.floor(rand() * list.length)]!;
  const fillers = 2 + Math.floor(rand() * (MAX_LEN - 7));
  const units = Array.from({ length: fillers }, () => [rand() < 0.8 ? pick(COMMON) : pick(RARE)]);
  let score = 0;
  for (let k = 0; k < 3; k++) {
    const positive = rand() < 0.5;
    const negated = rand() < 0.35;
    units.push([...(negated ? [pick(NEGATORS)] : []), pick(positive ? POSITIVE : NEGATIVE)]);
    score += (positive ? 1 : -1) * (negated ? -1 : 1);
  }
  for (let i = units.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [units[i], units[j]] = [units[j]!, units[i]!];
  }
  return { words: units.flat(), label: score > 0 ? 1 : 0 };
}

/** `n` reviews as `[n, MAX_LEN]` int32 ids and `[n]` labels (1 positive), the same for the same seed. */
export function reviews(n: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor1D; texts: string[] } {
  const rand = random(seed);
  const ids = new Int32Array(n * MAX_LEN);
  const labels = new Float32Array(n);
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const { words, label } = review(rand);
    ids.set(encode(words.join(" ")), i * MAX_LEN);
    labels[i] = label;
    texts.push(words.join(" "));
  }
  return { x: tf.tensor2d(ids, [n, MAX_LEN], "int32"), y: tf.tensor1d(labels), texts };
}
