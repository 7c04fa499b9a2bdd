/**
 * "Did you mean …?" for a misspelt name: a flag, a config key, a layer. Names are compared without case,
 * `-` and `_`, so `learning_rate` finds `learningRate` and `--batchsize` finds `--batch-size`.
 *
 * @module
 */

function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, "");
}

/** Levenshtein distance between two strings. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate closest to `name`, or `undefined` when none is close: at most a third of the name's
 * letters differ, or one name starts with the other (`--epoch` → `--epochs`).
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = normalize(name);
  if (wanted === "") return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = normalize(candidate);
    let d = distance(wanted, c);
    if (wanted.length >= 3 && (c.startsWith(wanted) || wanted.startsWith(c))) d = Math.min(d, 1);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(wanted.length / 3)) ? best : undefined;
}

/** `" Did you mean X?"` for the closest candidate, or `""`. */
export function didYouMean(name: string, candidates: Iterable<string>, format = (s: string) => s): string {
  const best = closestName(name, candidates);
  return best === undefined ? "" : ` Did you mean ${format(best)}?`;
}
