// Everything that touches the terminal. Commands hand data here; with --json stdout gets
// only JSON, and every human message goes to stderr or is left out.

import { Chalk, type ChalkInstance } from "chalk";

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

  /** Prints a line for people; silent under --json. */
  line(text = ""): void {
    if (!this.json) this.stdout.write(text + "\n");
  }

  /** Prints the command's result as JSON; under --json this is the only stdout. */
  data(value: unknown): void {
    this.stdout.write(JSON.stringify(value, null, this.tty ? 2 : 0) + "\n");
  }

  /** Either JSON or the human rendering of the same data. */
  result<T>(value: T, human: (v: T) => void): void {
    if (this.json) this.data(value);
    else human(value);
  }

  warn(text: string): void {
    if (!this.json) this.stderr.write(this.c.yellow("warning: ") + text + "\n");
  }

  error(message: string, hint?: string): void {
    this.stderr.write(this.c.red("error: ") + message + "\n");
    if (hint) this.stderr.write(this.c.dim(`hint: ${hint}`) + "\n");
  }

  write(text: string): void {
    this.stdout.write(text);
  }

  get columns(): number {
    return this.stdout.columns || 100;
  }

  get rows(): number {
    return this.stdout.rows || 30;
  }

  table(columns: Column[], rows: Record<string, string>[]): void {
    if (rows.length === 0) return;
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
export const visible = (s: string): number => s.replace(ANSI, "").length;

function truncate(s: string, width: number): string {
  const plain = s.replace(ANSI, "");
  return plain.length <= width ? s : plain.slice(0, Math.max(0, width - 1)) + "…";
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "-";
  const ms = now - Date.parse(iso);
  const future = ms < 0;
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
  return future ? `in ${text}` : `${text} ago`;
}
