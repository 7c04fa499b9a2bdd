/**
 * Text widths in DejaVu Sans (matplotlib's default font, the one the PNG renderer embeds), so that
 * boxes around text fit it. The renderer measures nothing itself when there is no canvas.
 *
 * @module
 */

/** Advance widths of DejaVu Sans Book for ASCII 32..126, in 1/1000 em (from the font's `hmtx` table). */
const ASCII_ADVANCE = [
  318,
  401,
  460,
  838,
  636,
  950,
  780,
  275,
  390,
  390,
  500,
  838,
  318,
  361,
  318,
  337,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  636,
  337,
  337,
  838,
  838,
  838,
  531,
  1000,
  684,
  686,
  698,
  770,
  632,
  575,
  775,
  752,
  295,
  295,
  656,
  557,
  863,
  748,
  787,
  603,
  787,
  695,
  635,
  611,
  732,
  684,
  989,
  685,
  611,
  685,
  390,
  337,
  390,
  838,
  500,
  500,
  613,
  635,
  550,
  635,
  615,
  352,
  635,
  634,
  278,
  278,
  579,
  278,
  974,
  634,
  612,
  635,
  635,
  411,
  521,
  392,
  634,
  592,
  818,
  592,
  592,
  525,
  636,
  337,
  636,
  838,
];

/** Width used for characters outside ASCII: a typical DejaVu Sans letter, in 1/1000 em. */
const OTHER_ADVANCE = 650;

/**
 * Width in pixels of `text` set in DejaVu Sans at `fontSize` pixels (no kerning).
 *
 * @example
 * ```ts
 * textWidth("Validation Loss", 14); // ≈ 110
 * ```
 */
export function textWidth(text: string, fontSize: number): number {
  let units = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    units += code >= 32 && code <= 126 ? ASCII_ADVANCE[code - 32]! : OTHER_ADVANCE;
  }
  return (units / 1000) * fontSize;
}
