// Everything that touches the terminal. Commands hand data here; with --json stdout gets
// only JSON, and every human message goes to stderr or is left out. User data is passed
// through safe() (./safe.ts) by the renderers before it is coloured; line(), warn(), error()
// and table() guard what they print once more, so a field a renderer forgot cannot drive
// the terminal either.

import { Chalk, type ChalkInstance } from "chalk";
import { guardRendered, safe, toJson } from "./safe.js";
import { displayWidth, truncateToWidth } from "./width.js";

export { safe } from "./safe.js";

export interface OutputOptions {
  json: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

export class Output {
  readonly json: boolean;
  readonly tty: boolean;
  readonly c: ChalkInstance;
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: NodeJS.WriteStream;

  constructor(opts: OutputOptions) {
    const env = opts.env ?? process.env;
    this.json = opts.json;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.tty = Boolean(this.stdout.isTTY);
    const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== "";
    const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0" && env.FORCE_COLOR !== "";
    // Colour only on a terminal (or when forced), never under NO_COLOR or --json.
    this.c = new Chalk({ level: !noColor && !this.json && (this.tty || forced) ? 1 : 0 });
  }

  private get colour(): boolean {
    return this.c.level > 0;
  }

  /** Prints a line (or lines) for people; silent under --json. */
  line(text = ""): void {
    if (!this.json) this.stdout.write(guardRendered(text, { colour: this.colour, multiline: true }) + "\n");
  }

  /** Prints the command's result as JSON; under --json this is the only stdout. */
  data(value: unknown): void {
    this.stdout.write(toJson(value, this.tty ? 2 : 0) + "\n");
  }

  /** Either JSON or the human rendering of the same data. */
  result<T>(value: T, human: (v: T) => void): void {
    if (this.json) this.data(value);
    else human(value);
  }

  warn(text: string): void {
    if (!this.json) this.stderr.write(this.c.yellow("warning: ") + guardRendered(text, { colour: this.colour, multiline: true }) + "\n");
  }

  /** An error for people. The message and hint are plain text (they often echo user input). */
  error(message: string, hint?: string): void {
    this.stderr.write(this.c.red("error: ") + safe(message, { multiline: true }) + "\n");
    if (hint) this.stderr.write(this.c.dim(`hint: ${safe(hint, { multiline: true })}`) + "\n");
  }

  /** Where a command writes raw bytes (a file's, for `jobs artifact`): stdout, never under --json. */
  get bytes(): NodeJS.WritableStream {
    return this.stdout;
  }

  /** Writes as is: for the renderer's own cursor movements (the dashboard). */
  write(text: string): void {
    this.stdout.write(text);
  }

  get columns(): number {
    return this.stdout.columns || 100;
  }

  get rows(): number {
    return this.stdout.rows || 30;
  }

  /** Cells are rendered text: user data in them has been through safe(), colours are ours. */
  table(columns: Column[], rawRows: Record<string, string>[]): void {
    if (rawRows.length === 0) return;
    const cell = (text: string) => guardRendered(text, { colour: this.colour });
    const rows = rawRows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)])));
    const widths = columns.map((col) => Math.max(visible(col.title), ...rows.map((r) => visible(r[col.key] ?? ""))));
    // Shrink the flexible column to the terminal's width.
    const flex = columns.findIndex((c) => c.flex);
    if (flex >= 0 && this.tty) {
      const total = widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1);
      const over = total - this.columns;
      if (over > 0) widths[flex] = Math.max(8, widths[flex]! - over);
    }
    const pad = (text: string, i: number) => {
      const w = widths[i]!;
      const t = visible(text) > w ? truncate(text, w) : text;
      return columns[i]!.align === "right" ? " ".repeat(w - visible(t)) + t : t + " ".repeat(w - visible(t));
    };
    this.line(this.c.bold(columns.map((col, i) => pad(col.title, i)).join("  ").trimEnd()));
    for (const r of rows) this.line(columns.map((col, i) => pad(r[col.key] ?? "", i)).join("  ").trimEnd());
  }
}

export interface Column {
  key: string;
  title: string;
  align?: "left" | "right";
  /** This column gives up width when the terminal is narrow. */
  flex?: boolean;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
export const stripColour = (s: string): string => s.replace(ANSI, "");

/** The columns rendered text takes in a terminal: colours take none, "日" takes two. */
export const visible = (s: string): number => displayWidth(stripColour(s));

/** Rendered text cut to `width` columns (its colours are dropped when it is cut). */
export function truncate(s: string, width: number): string {
  return visible(s) <= width ? s : truncateToWidth(stripColour(s), width);
}

/** "1 file", "2 files": a count with its noun, singular for exactly one. */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "-";
  const ms = now - Date.parse(iso);
  const future = ms < 0;
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
  return future ? `in ${text}` : `${text} ago`;
}

/**
 * What a failed write to stdout means, as the one line to print on stderr, or null for a reader
 * that went away (EPIPE: `teamwork jobs list | head -1`), which is no failure of ours and stays
 * quiet. Anything else (a full disk, an I/O error) lost the output, so the command failed.
 */
export function outputFailureMessage(err: NodeJS.ErrnoException): string | null {
  if (err.code === "EPIPE") return null;
  return `could not write output: ${err.code ?? "error"}${err.message ? ` (${err.message.replace(/^[A-Z]+: /, "")})` : ""}`;
}
