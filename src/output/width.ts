// How many terminal columns text takes, and cutting it to a number of columns. A string's
// .length counts UTF-16 units: "日本" is 2 but takes 4 columns, "👍🏽" is 4 but takes 2, "é"
// written as e + U+0301 is 2 but takes 1. Text is measured by grapheme (what the reader sees
// as one character, Intl.Segmenter) and each grapheme by its first code point:
//   - 0 for a combining mark, a format character (ZWJ, ZWSP, soft hyphen...) on its own;
//   - 2 for East Asian Wide and Fullwidth (UAX #11), for emoji shown as emoji (Emoji_Presentation,
//     or any character followed by the emoji variation selector U+FE0F), for a flag (a pair of
//     regional indicators) and for a ZWJ sequence (one emoji however many it joins);
//   - 1 for everything else (Ambiguous-width characters count 1, as most terminals outside
//     East Asian locales draw them).
// This is what wcwidth-based terminals (xterm, VTE, kitty, iTerm2) draw for current text.

/**
 * East Asian Wide (W) and Fullwidth (F) ranges that are not emoji (emoji are found by their
 * Unicode property), from EastAsianWidth.txt, Unicode 15.1, merged where gaps are unassigned.
 */
const WIDE = new RegExp(
  "[" +
    [
      "\\u{1100}-\\u{115F}", // Hangul Jamo initial consonants
      "\\u{2329}-\\u{232A}", // angle brackets
      "\\u{2E80}-\\u{303E}", // CJK radicals, Kangxi radicals, ideographic description, CJK symbols and punctuation
      "\\u{3041}-\\u{33FF}", // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK strokes, enclosed CJK, CJK compatibility
      "\\u{3400}-\\u{4DBF}", // CJK Extension A
      "\\u{4E00}-\\u{9FFF}", // CJK Unified Ideographs
      "\\u{A000}-\\u{A4CF}", // Yi
      "\\u{A960}-\\u{A97F}", // Hangul Jamo Extended-A
      "\\u{AC00}-\\u{D7A3}", // Hangul syllables
      "\\u{F900}-\\u{FAFF}", // CJK compatibility ideographs
      "\\u{FE10}-\\u{FE19}", // vertical forms
      "\\u{FE30}-\\u{FE6F}", // CJK compatibility forms, small form variants
      "\\u{FF00}-\\u{FF60}", // fullwidth forms
      "\\u{FFE0}-\\u{FFE6}", // fullwidth signs
      "\\u{16FE0}-\\u{16FE4}", // ideographic symbols
      "\\u{17000}-\\u{18CFF}", // Tangut, Khitan
      "\\u{1AFF0}-\\u{1B2FF}", // Kana extensions, Nushu
      "\\u{1F200}-\\u{1F265}", // enclosed ideographic supplement
      "\\u{20000}-\\u{3FFFD}", // CJK Extensions B and later
    ].join("") +
    "]",
  "u",
);
const ZERO = /^[\p{Mn}\p{Me}\p{Cf}\u{1160}-\u{11FF}]/u; // combining marks, format characters, Hangul medial vowels and finals
const EMOJI = /^\p{Emoji_Presentation}/u;
const REGIONAL = /^\p{Regional_Indicator}/u;
const PICTOGRAPHIC = /^\p{Extended_Pictographic}/u;
const PLAIN = /^[\x20-\x7e]*$/; // printable ASCII: one column each, the common case

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The columns one grapheme takes. */
export function graphemeWidth(g: string): number {
  if (g === "") return 0;
  if (ZERO.test(g)) return 0;
  const first = String.fromCodePoint(g.codePointAt(0)!);
  if (REGIONAL.test(first)) return g.length > first.length ? 2 : 1; // a flag, or one indicator alone
  if (EMOJI.test(first) || WIDE.test(first)) return 2;
  if (g.includes("\uFE0F") || (PICTOGRAPHIC.test(first) && g.includes("\u200D"))) return 2;
  return 1;
}

/** The columns text takes in a terminal (text without escape sequences). */
export function displayWidth(text: string): number {
  if (PLAIN.test(text)) return text.length;
  let width = 0;
  for (const { segment } of segmenter.segment(text)) width += graphemeWidth(segment);
  return width;
}

/**
 * Text cut to at most `width` columns, ending with "…" when cut. Cuts between graphemes only,
 * so never inside a surrogate pair, a ZWJ sequence, a flag or a letter and its accents; a
 * wide character that would straddle the limit is left out, so the result may be a column short.
 */
export function truncateToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return "";
  let out = "";
  let used = 0;
  for (const { segment } of segmenter.segment(text)) {
    const w = graphemeWidth(segment);
    if (used + w > width - 1) break;
    out += segment;
    used += w;
  }
  return out + "…";
}
