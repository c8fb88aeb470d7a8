// Structured log lines: `<time> <level> <event> key=value ...`, one per line, to stderr.
// A detached daemon's stderr is its log file (client/autostart.ts opens it for the child).

export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

const format = (value: unknown): string => {
  const text = typeof value === "string" ? value : value instanceof Error ? value.message : JSON.stringify(value);
  return /^[^\s"=]+$/.test(text ?? "") ? text! : JSON.stringify(text);
};

export function createLogger(write: (line: string) => void = (l) => process.stderr.write(l), now = () => Date.now()): Logger {
  const log = (level: Level, event: string, fields: Record<string, unknown> = {}) => {
    let line = `${new Date(now()).toISOString()} ${level.padEnd(5)} ${event}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${format(v)}`;
    write(line + "\n");
  };
  return {
    log,
    info: (e, f) => log("info", e, f),
    warn: (e, f) => log("warn", e, f),
    error: (e, f) => log("error", e, f),
  };
}
