/**
 * Python number formatting, reproduced exactly so that Keras messages, CSV rows, progress bars and
 * checkpoint file names read the same as Keras's: `repr(float)`, `f"{x:.4f}"`, `f"{x:.4e}"` (round
 * half to even on the exact binary value) and the `str.format` templates of `ModelCheckpoint`.
 */

/** `x` as an exact fraction `num / den` (`den` a power of two), for finite non-negative `x`. */
function toFraction(x: number): { num: bigint; den: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  const exp2 = (exponent === 0 ? 1 : exponent) - 1075;
  return exp2 >= 0 ? { num: mantissa << BigInt(exp2), den: 1n } : { num: mantissa, den: 1n << BigInt(-exp2) };
}

/** `num / den` rounded to an integer, ties to even (Python's rounding of the exact value). */
function roundHalfEven(num: bigint, den: bigint): bigint {
  const q = num / den;
  const twice = 2n * (num % den);
  if (twice > den || (twice === den && q % 2n === 1n)) return q + 1n;
  return q;
}

/** `|x| * 10^power` rounded half to even. */
function scaledRound(x: number, power: number): bigint {
  const { num, den } = toFraction(Math.abs(x));
  return power >= 0
    ? roundHalfEven(num * 10n ** BigInt(power), den)
    : roundHalfEven(num, den * 10n ** BigInt(-power));
}

function nonFinite(x: number): string | undefined {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return undefined;
}

function signOf(x: number): string {
  return x < 0 || Object.is(x, -0) ? "-" : "";
}

/** Python `f"{x:.{digits}f}"`. */
export function formatFixed(x: number, digits: number): string {
  const special = nonFinite(x);
  if (special !== undefined) return special;
  const n = scaledRound(x, digits).toString().padStart(digits + 1, "0");
  const whole = n.slice(0, n.length - digits);
  return signOf(x) + whole + (digits > 0 ? "." + n.slice(n.length - digits) : "");
}

/** Decimal exponent and rounded digits of `|x|` with `digits` digits after the first. */
function exponentDigits(x: number, digits: number): { exponent: number; mantissa: string } {
  if (x === 0) return { exponent: 0, mantissa: "0".repeat(digits + 1) };
  let exponent = Math.floor(Math.log10(Math.abs(x)));
  for (;;) {
    const n = scaledRound(x, digits - exponent).toString();
    if (n.length > digits + 1) exponent += 1;
    else if (n.length < digits + 1) exponent -= 1;
    else return { exponent, mantissa: n };
  }
}

function exponentSuffix(exponent: number): string {
  return (exponent < 0 ? "e-" : "e+") + String(Math.abs(exponent)).padStart(2, "0");
}

/** Python `f"{x:.{digits}e}"`, e.g. `1.0000e-04`. */
export function formatExponential(x: number, digits: number): string {
  const special = nonFinite(x);
  if (special !== undefined) return special;
  const { exponent, mantissa } = exponentDigits(x, digits);
  const body = mantissa[0] + (digits > 0 ? "." + mantissa.slice(1) : "");
  return signOf(x) + body + exponentSuffix(exponent);
}

/** Python `f"{x:.{precision}g}"`. */
export function formatGeneral(x: number, precision: number): string {
  const special = nonFinite(x);
  if (special !== undefined) return special;
  const p = precision === 0 ? 1 : precision;
  const { exponent } = exponentDigits(x, p - 1);
  const strip = (s: string) => s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  if (exponent >= -4 && exponent < p) return strip(formatFixed(x, p - 1 - exponent));
  const text = formatExponential(x, p - 1);
  const at = text.indexOf("e");
  return strip(text.slice(0, at)) + text.slice(at);
}

/** Python `repr(float(x))`: shortest round-trip digits, e.g. `0.1`, `1e-05`, `3.0`. */
export function pyRepr(x: number): string {
  const special = nonFinite(x);
  if (special !== undefined) return special;
  if (x === 0) return signOf(x) + "0.0";
  const [digitsPart, expPart] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = digitsPart.replace(".", "");
  const exponent = Number(expPart);
  let body: string;
  if (exponent < -4 || exponent >= 16) {
    body = digits[0] + (digits.length > 1 ? "." + digits.slice(1) : "") + exponentSuffix(exponent);
  } else if (exponent < 0) {
    body = "0." + "0".repeat(-exponent - 1) + digits;
  } else {
    const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
    const rest = digits.slice(exponent + 1);
    body = whole + "." + (rest === "" ? "0" : rest);
  }
  return signOf(x) + body;
}

/** One replacement field of a template: `{name}` or `{name:spec}`. */
interface Field {
  readonly name: string;
  readonly spec: string;
}

/** A parsed Python `str.format` template (named fields only). */
export type Template = ReadonlyArray<string | Field>;

/**
 * Parses a Python `str.format` template with named fields, e.g. `"w-{epoch:02d}-{val_loss:.2f}.keras"`.
 * `{{` and `}}` are literal braces.
 */
export function parseTemplate(template: string): Template {
  const parts: Array<string | Field> = [];
  let literal = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if ((c === "{" || c === "}") && template[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === "}") {
      throw new SyntaxError(
        `Cannot parse template "${template}" as it has a single '}' at index ${i}: write '}}' for a literal brace`,
      );
    } else if (c === "{") {
      const end = template.indexOf("}", i);
      if (end < 0) {
        throw new SyntaxError(
          `Cannot parse template "${template}" as the '{' at index ${i} is never closed: write '{{' for a literal brace`,
        );
      }
      const inner = template.slice(i + 1, end);
      const colon = inner.indexOf(":");
      const name = colon < 0 ? inner : inner.slice(0, colon);
      const spec = colon < 0 ? "" : inner.slice(colon + 1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new SyntaxError(
          `Cannot parse template "${template}" as field "{${inner}}" has no plain name: use a log key such as {epoch} or {val_loss:.2f}`,
        );
      }
      parseSpec(spec, template);
      if (literal !== "") parts.push(literal);
      literal = "";
      parts.push({ name, spec });
      i = end;
    } else {
      literal += c;
    }
  }
  if (literal !== "") parts.push(literal);
  return parts;
}

interface Spec {
  fill: string;
  align: string;
  sign: string;
  zero: boolean;
  width: number;
  precision: number | undefined;
  type: string;
}

const SPEC = /^(?:(.)?([<>=^]))?([+\- ])?(0)?(\d+)?(?:\.(\d+))?([deEfFgG%])?$/;

function parseSpec(spec: string, template: string): Spec {
  const m = SPEC.exec(spec);
  if (m === null) {
    throw new SyntaxError(
      `Cannot use format spec ":${spec}" in template "${template}": supported is [[fill]align][sign][0][width][.precision][d|e|E|f|F|g|G|%]`,
    );
  }
  const zero = m[4] !== undefined;
  return {
    fill: m[1] ?? (zero && m[2] === undefined ? "0" : " "),
    align: m[2] ?? (zero ? "=" : ">"),
    sign: m[3] ?? "-",
    zero,
    width: m[5] === undefined ? 0 : Number(m[5]),
    precision: m[6] === undefined ? undefined : Number(m[6]),
    type: m[7] ?? "",
  };
}

/** A value to substitute: integers (epoch, batch) format as Python `int`, the rest as Python `float`. */
export interface TemplateValue {
  readonly value: number;
  readonly isInt: boolean;
}

function formatValue(name: string, v: TemplateValue, spec: Spec, template: string): string {
  const x = v.value;
  const p = spec.precision;
  let body: string;
  switch (spec.type) {
    case "d":
      if (!v.isInt) {
        throw new TypeError(
          `Cannot format {${name}:d} in template "${template}" as ${name}=${pyRepr(x)} is a float: ` +
            `use a float format such as {${name}:.2f}`,
        );
      }
      body = String(Math.abs(x));
      break;
    case "f":
    case "F":
      body = formatFixed(Math.abs(x), p ?? 6);
      break;
    case "e":
    case "E":
      body = formatExponential(Math.abs(x), p ?? 6);
      break;
    case "g":
    case "G":
      body = formatGeneral(Math.abs(x), p ?? 6);
      break;
    case "%":
      body = formatFixed(Math.abs(x) * 100, p ?? 6) + "%";
      break;
    default:
      if (p !== undefined) {
        throw new SyntaxError(
          `Cannot format {${name}:${p}} in template "${template}" without a type: add one, e.g. {${name}:.${p}f}`,
        );
      }
      body = v.isInt ? String(Math.abs(x)) : pyRepr(Math.abs(x));
  }
  if (spec.type === "E" || spec.type === "F" || spec.type === "G") body = body.toUpperCase();
  const negative = x < 0 || (!v.isInt && Object.is(x, -0));
  const sign = negative ? "-" : spec.sign === "+" ? "+" : spec.sign === " " ? " " : "";
  const pad = Math.max(0, spec.width - sign.length - body.length);
  const fill = spec.fill.repeat(pad);
  switch (spec.align) {
    case "<":
      return sign + body + fill;
    case "^": {
      const left = spec.fill.repeat(Math.floor(pad / 2));
      return left + sign + body + spec.fill.repeat(pad - left.length);
    }
    case "=":
      return sign + fill + body;
    default:
      return fill + sign + body;
  }
}

/**
 * Fills a parsed template. A field whose name is not in `values` throws a `RangeError` that lists the
 * available names.
 */
export function formatTemplate(
  template: string,
  parsed: Template,
  values: Readonly<Record<string, TemplateValue>>,
): string {
  let out = "";
  for (const part of parsed) {
    if (typeof part === "string") {
      out += part;
      continue;
    }
    const v = values[part.name];
    if (v === undefined) {
      throw new RangeError(
        `Failed to format this callback filepath: "${template}". Reason: '${part.name}' is not available. ` +
          `Available keys are: ${Object.keys(values).join(",")}. Use one of them in the filepath`,
      );
    }
    out += formatValue(part.name, v, parseSpec(part.spec, template), template);
  }
  return out;
}
