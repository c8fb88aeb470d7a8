// Structured log lines: `<time> <level> <event> key=value ...`, one per line, to stderr or
// the sink given. Logging never throws, whatever a field holds (a BigInt, a circular
// object, a getter that throws, a symbol) and whatever the sink does: a log line must not
// turn a handled fault into a crash.

export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** A value as the text of one field: bare when it has no space, quote or "=", else quoted. */
export function formatValue(value: unknown): string {
  let text: string;
  try {
    text = toText(value);
  } catch (err) {
    text = `[unprintable: ${safeMessage(err)}]`;
  }
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

function toText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "bigint":
    case "symbol":
    case "number":
    case "boolean":
    case "undefined":
      return String(value);
    case "function":
      return `[function ${value.name || "anonymous"}]`;
  }
  if (value instanceof Error) return value.message;
  return JSON.stringify(value, jsonSafe()) ?? String(value);
}

/** A JSON.stringify replacer for what JSON cannot hold: BigInts as text, a repeated object (a cycle) as "[circular]". */
function jsonSafe(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key, value) {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "symbol") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    // `this` is the object holding the key: drop the ancestors we have come back out of.
    while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
    if (ancestors.includes(value)) return "[circular]";
    ancestors.push(value);
    return value;
  };
}

function safeMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return "?";
  }
}

export function formatLine(time: number, level: Level, event: string, fields: Record<string, unknown>): string {
  let line = `${new Date(time).toISOString()} ${level.padEnd(5)} ${event}`;
  let keys: string[];
  try {
    keys = Object.keys(fields);
  } catch (err) {
    return `${line} fields=${formatValue(`[unprintable: ${safeMessage(err)}]`)}\n`;
  }
  for (const k of keys) {
    let v: unknown;
    try {
      v = fields[k]; // a getter may throw
    } catch (err) {
      v = `[unprintable: ${safeMessage(err)}]`;
    }
    if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
  }
  return line + "\n";
}

export function createLogger(write: (line: string) => void = (l) => process.stderr.write(l), now = () => Date.now()): Logger {
  const log = (level: Level, event: string, fields: Record<string, unknown> = {}) => {
    try {
      write(formatLine(now(), level, event, fields));
    } catch {
      // Nowhere left to say it.
    }
  };
  return {
    log,
    info: (e, f) => log("info", e, f),
    warn: (e, f) => log("warn", e, f),
    error: (e, f) => log("error", e, f),
  };
}
