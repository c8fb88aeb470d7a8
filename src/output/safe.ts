// Text from users and jobs, made harmless for a terminal. A task title, a file name, a job's
// error or log line can hold escape sequences (clear the screen, set the window title, write
// a hyperlink), carriage returns and backspaces (overwrite what was printed), bidi overrides
// (show text in another order than it is) and newlines (forge a line of our output). Printed
// raw, the terminal would act on them. Instead each is shown as it would be written in a
// JavaScript string: "\n", "\r", "\t", then "\xHH" up to U+00FF and "\uHHHH" above, so
// ESC is shown as "\x1b" and a right-to-left override as "\u202e". A backslash stays a
// backslash: the escapes are for reading, not for parsing back (use --json for that).

/**
 * Every character a terminal acts on: C0 controls, DEL, C1 controls, the Arabic letter mark,
 * the left-to-right and right-to-left marks, the line and paragraph separators, and the bidi
 * embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0)!;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, "0")}` : `\\u${cp.toString(16).padStart(4, "0")}`;
}

export interface SafeOptions {
  /** Keep newlines and tabs: the text is printed as several lines (a description, a digest). */
  multiline?: boolean;
}

/**
 * User data made safe to print: every control character shown as a visible escape. A
 * single-line field (a title, a name, an error in a table cell) also shows its newlines and
 * tabs escaped, so it stays on its line and in its column; multi-line text keeps them, and a
 * Windows line end counts as a newline.
 */
export function safe(text: string, opts: SafeOptions = {}): string {
  const t = opts.multiline ? text.replace(/\r\n/g, "\n") : text;
  return t.replace(UNSAFE, (ch) => (opts.multiline && (ch === "\n" || ch === "\t") ? ch : escapeChar(ch)));
}

// Our own colour codes (chalk's SGR sequences): ESC [ digits and semicolons m.
// eslint-disable-next-line no-control-regex
const SGR_OR_UNSAFE = /\u001b\[[0-9;]*m|[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * The last guard before a rendered line reaches the terminal, for a field a renderer forgot
 * to pass through safe(): escapes every control but newlines and tabs (when multi-line) and,
 * when colour is on, colour codes (which are ours, as user data went through safe() first).
 */
export function guardRendered(text: string, opts: SafeOptions & { colour: boolean }): string {
  return text.replace(SGR_OR_UNSAFE, (m) => {
    if (m.length > 1) return opts.colour ? m : escapeChar("\u001b") + m.slice(1);
    return opts.multiline && (m === "\n" || m === "\t") ? m : escapeChar(m);
  });
}

// What JSON.stringify leaves raw though a terminal acts on it: it escapes only U+0000-U+001F.
const JSON_RAW = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON for a terminal or a pipe: exactly JSON.stringify's value, with DEL, C1 controls and
 * bidi controls also written as \uXXXX escapes. These characters can only occur inside JSON
 * strings, where the escape means the same character, so a parser reads the same value back.
 */
export function toJson(value: unknown, indent = 0): string {
  return (JSON.stringify(value, null, indent) ?? "null").replace(JSON_RAW, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
