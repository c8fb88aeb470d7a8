// Configuration: <home>/config.json, overridden by TEAMWORK_* environment variables,
// overridden by flags. Every key is declared once below with its parser; an unknown key or
// a bad value is an error that names the key, where it came from, and the closest known key.

import { existsSync, readFileSync } from "node:fs";
import { delimiter, isAbsolute } from "node:path";
import { TeamworkError } from "../lib/errors.js";
import { didYouMean } from "../lib/suggest.js";
import { parseDuration } from "../lib/duration.js";
import { emailProblem } from "../lib/email.js";

export interface Config {
  /** Worker slots: how many jobs run at once. */
  concurrency: number;
  /** How safe an acknowledged write is: "full" survives a power cut, "process" a daemon crash (Durability in store/types.ts; each store interprets it). */
  durability: "full" | "process";
  /**
   * A PostgreSQL URL (postgres://user[:password]@host[:port]/database) to keep the board and
   * the queue in, shared by a team's daemons; null keeps them in SQLite under the home. The
   * URL may hold a password: it is never printed or logged as it is.
   */
  database: string | null;
  /**
   * On a PostgreSQL database: daemons wake each other at once (new jobs, cancels) with
   * LISTEN/NOTIFY. false: they learn only by polling (claims every second, cancels with the
   * heartbeat), for a connection path that does not carry notifications. Ignored on SQLite.
   */
  databaseNotify: boolean;
  /** Absolute paths of ES modules whose default export is a job definition or an array of them. */
  jobModules: string[];
  smtpUrl: string | null;
  mailFrom: string;
  /** How long finished jobs are kept (ms). */
  retention: number;
  cleanup: { maxAge: number };
  digest: { recipients: string[]; sendEmpty: boolean };
  /** A job whose attempts killed their worker this many times is failed as quarantined. */
  quarantineAfter: number;
  /** How many workers jobs of fast types (under 1 ms) may keep busy at once; 0 = the cores less one, at least 1. */
  fastWorkers: number;
  /**
   * Keep one worker thread started and loaded at all times, so that a job that arrives after
   * any idle spell starts at once instead of waiting ~85 ms for a thread (about 10 MiB of RSS).
   */
  warmWorker: boolean;
  /** Default per-attempt timeout of a job (ms); a job type may set its own. */
  jobTimeout: number;
  /** Default memory limit of a job's worker (MiB): its heap in a thread, the whole process in a process. */
  jobMemoryMb: number;
  /** Per job type, "thread" or "process", over what the type declares. */
  jobIsolation: Record<string, "thread" | "process">;
  /** How long a cancelled running job may take to stop before its worker is terminated (ms). */
  cancelGrace: number;
  /** How long a graceful stop waits for running jobs (ms). */
  shutdownGrace: number;
  backoff: { base: number; cap: number };
  /** The daemon's log rotates past this size (three old files are kept). */
  logMaxBytes: number;
  /** The largest file kept in the store, uploads and job artifacts alike (protocol/files.ts says why 32 MiB). */
  fileMaxBytes: number;
  /** Connections the daemon holds at once (more are refused with 503), and how long an idle one is kept (ms). */
  connections: { max: number; idleTimeout: number; headersTimeout: number; requestTimeout: number };
}

export const DEFAULTS: Config = {
  concurrency: 3,
  durability: "full",
  database: null,
  databaseNotify: true,
  jobModules: [],
  smtpUrl: null,
  mailFrom: "teamwork@localhost",
  retention: 7 * 86_400_000,
  cleanup: { maxAge: 86_400_000 },
  digest: { recipients: [], sendEmpty: false },
  quarantineAfter: 3,
  fastWorkers: 0,
  warmWorker: true,
  jobTimeout: 15 * 60_000,
  jobMemoryMb: 512,
  jobIsolation: {},
  cancelGrace: 5_000,
  shutdownGrace: 10_000,
  backoff: { base: 1_000, cap: 3_600_000 },
  logMaxBytes: 10 * 1024 * 1024,
  // Why 32 MiB: src/protocol/files.ts.
  fileMaxBytes: 32 * 1024 * 1024,
  // Well under the common limit of 1,024 descriptors: the database, its journal, logs and
  // workers need some too.
  connections: { max: 512, idleTimeout: 60_000, headersTimeout: 10_000, requestTimeout: 60_000 },
};

type Source = "config.json" | "environment" | "flag";
type Parser = (value: unknown) => unknown;

const int = (min: number, max: number): Parser => (value) => {
  const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
};
const duration: Parser = (value) => {
  if (typeof value !== "string") throw new Error(`must be a duration like "30s" or "24h", got ${JSON.stringify(value)}`);
  return parseDuration(value);
};
const durationAtLeast = (minMs: number): Parser => (value) => {
  const ms = duration(value) as number;
  if (ms < minMs) throw new Error(`must be at least ${minMs} ms, got ${JSON.stringify(value)}`);
  return ms;
};
const oneOf = (choices: string[]): Parser => (value) => {
  if (typeof value !== "string" || !choices.includes(value)) {
    throw new Error(`must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}${typeof value === "string" ? didYouMean(value, choices) : ""}`);
  }
  return value;
};
// The same rule as the API's and the mailer's (lib/email.ts).
const email: Parser = (value) => {
  if (typeof value !== "string") throw new Error(`must be an email address, got ${JSON.stringify(value)}`);
  const problem = emailProblem(value.trim());
  if (problem) throw new Error(`must be an email address, got ${JSON.stringify(value)}: ${problem}`);
  return value.trim();
};
const list = (item: Parser, separator: string): Parser => (value) => {
  const items = typeof value === "string" ? value.split(separator).map((s) => s.trim()).filter(Boolean) : value;
  if (!Array.isArray(items)) throw new Error(`must be a list, got ${JSON.stringify(value)}`);
  return items.map((v, i) => {
    try {
      return item(v);
    } catch (err) {
      throw new Error(`item ${i + 1}: ${(err as Error).message}`);
    }
  });
};
const bool: Parser = (value) => {
  if (value === true || value === "true" || value === "1") return true;
  if (value === false || value === "false" || value === "0") return false;
  throw new Error(`must be true or false, got ${JSON.stringify(value)}`);
};
const absolutePath: Parser = (value) => {
  if (typeof value !== "string" || !isAbsolute(value)) throw new Error(`must be an absolute path, got ${JSON.stringify(value)}`);
  return value;
};
const smtpUrl: Parser = (value) => {
  if (value === null) return null;
  if (typeof value !== "string") throw new Error(`must be a URL like smtp://user:pass@host:587, got ${JSON.stringify(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error("is not a valid URL (expected smtp://host:port or smtps://host:port)");
  }
  if (url.protocol !== "smtp:" && url.protocol !== "smtps:") throw new Error(`must use smtp:// or smtps://, got ${url.protocol}//`);
  return value;
};

/**
 * A PostgreSQL URL. Its text is never echoed in an error: it may carry a password.
 */
const databaseUrl: Parser = (value) => {
  if (value === null) return null;
  const expected = "a PostgreSQL URL like postgres://user@host:5432/teamwork";
  if (typeof value !== "string") throw new Error(`must be ${expected}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new Error(`is not a valid URL (expected ${expected})`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new Error(`must use postgres:// or postgresql://, got ${url.protocol.slice(0, 20)}//`);
  }
  if (!url.hostname && !url.searchParams.get("host")) throw new Error(`names no host (expected ${expected})`);
  return value.trim();
};

/** {"thumbnail": "thread"} in config.json, "thumbnail=thread,report=process" in the environment or a flag. */
const isolationByType: Parser = (value) => {
  let pairs: [string, unknown][];
  if (typeof value === "string") {
    pairs = value.split(",").map((s) => s.trim()).filter(Boolean).map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`must be type=thread or type=process pairs separated by commas, got ${JSON.stringify(pair)}`);
      return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
    });
  } else if (typeof value === "object" && value !== null && !Array.isArray(value)) pairs = Object.entries(value);
  else throw new Error(`must map job types to "thread" or "process", like {"thumbnail": "process"}, got ${JSON.stringify(value)}`);
  return Object.fromEntries(
    pairs.map(([type, mode]) => {
      try {
        return [type, oneOf(["thread", "process"])(mode)];
      } catch (err) {
        throw new Error(`${type}: ${(err as Error).message}`);
      }
    }),
  );
};

interface KeySpec {
  parse: Parser;
  env: string;
}

/** Every configuration key, by its dotted path. */
const KEYS: Record<string, KeySpec> = {
  concurrency: { parse: int(1, 64), env: "TEAMWORK_CONCURRENCY" },
  durability: { parse: oneOf(["full", "process"]), env: "TEAMWORK_DURABILITY" },
  database: { parse: databaseUrl, env: "TEAMWORK_DATABASE_URL" },
  databaseNotify: { parse: bool, env: "TEAMWORK_DATABASE_NOTIFY" },
  jobModules: { parse: list(absolutePath, delimiter), env: "TEAMWORK_JOB_MODULES" },
  smtpUrl: { parse: smtpUrl, env: "TEAMWORK_SMTP_URL" },
  mailFrom: { parse: email, env: "TEAMWORK_MAIL_FROM" },
  retention: { parse: duration, env: "TEAMWORK_RETENTION" },
  "cleanup.maxAge": { parse: duration, env: "TEAMWORK_CLEANUP_MAX_AGE" },
  "digest.recipients": { parse: list(email, ","), env: "TEAMWORK_DIGEST_RECIPIENTS" },
  "digest.sendEmpty": { parse: bool, env: "TEAMWORK_DIGEST_SEND_EMPTY" },
  jobTimeout: { parse: duration, env: "TEAMWORK_JOB_TIMEOUT" },
  quarantineAfter: { parse: int(1, 100), env: "TEAMWORK_QUARANTINE_AFTER" },
  fastWorkers: { parse: int(0, 64), env: "TEAMWORK_FAST_WORKERS" },
  warmWorker: { parse: bool, env: "TEAMWORK_WARM_WORKER" },
  jobMemoryMb: { parse: int(16, 65_536), env: "TEAMWORK_JOB_MEMORY_MB" },
  jobIsolation: { parse: isolationByType, env: "TEAMWORK_JOB_ISOLATION" },
  cancelGrace: { parse: duration, env: "TEAMWORK_CANCEL_GRACE" },
  shutdownGrace: { parse: duration, env: "TEAMWORK_SHUTDOWN_GRACE" },
  "backoff.base": { parse: duration, env: "TEAMWORK_BACKOFF_BASE" },
  "backoff.cap": { parse: duration, env: "TEAMWORK_BACKOFF_CAP" },
  logMaxBytes: { parse: int(1024, 1024 ** 3), env: "TEAMWORK_LOG_MAX_BYTES" },
  fileMaxBytes: { parse: int(1024, 256 * 1024 * 1024), env: "TEAMWORK_FILE_MAX_BYTES" },
  "connections.max": { parse: int(4, 65_536), env: "TEAMWORK_CONNECTIONS_MAX" },
  "connections.idleTimeout": { parse: durationAtLeast(100), env: "TEAMWORK_CONNECTIONS_IDLE_TIMEOUT" },
  "connections.headersTimeout": { parse: durationAtLeast(100), env: "TEAMWORK_CONNECTIONS_HEADERS_TIMEOUT" },
  "connections.requestTimeout": { parse: durationAtLeast(100), env: "TEAMWORK_CONNECTIONS_REQUEST_TIMEOUT" },
};
const GROUPS = new Set(Object.keys(KEYS).filter((k) => k.includes(".")).map((k) => k.split(".")[0]!));

export const CONFIG_KEYS = Object.keys(KEYS);

function configError(source: Source, key: string, message: string): TeamworkError {
  const where = source === "environment" ? `${KEYS[key]?.env ?? key}` : source === "flag" ? `--${key}` : `config.json: ${key}`;
  return new TeamworkError("invalid_input", `invalid configuration: ${where} ${message}`);
}

function set(config: Config, key: string, value: unknown, source: Source): void {
  const spec = KEYS[key];
  if (!spec) {
    throw new TeamworkError("invalid_input", `invalid configuration: unknown key "${key}" in ${source}${didYouMean(key, CONFIG_KEYS)}`);
  }
  let parsed: unknown;
  try {
    parsed = spec.parse(value);
  } catch (err) {
    throw configError(source, key, (err as Error).message);
  }
  const [group, leaf] = key.split(".");
  if (leaf) ((config as unknown as Record<string, Record<string, unknown>>)[group!]!)[leaf] = parsed;
  else (config as unknown as Record<string, unknown>)[key] = parsed;
}

/** Flattens a parsed config.json into dotted keys, refusing unknown nesting. */
function flatten(file: Record<string, unknown>): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [key, value] of Object.entries(file)) {
    if (GROUPS.has(key)) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new TeamworkError("invalid_input", `invalid configuration: config.json: ${key} must be an object`);
      }
      for (const [leaf, v] of Object.entries(value)) out.push([`${key}.${leaf}`, v]);
    } else out.push([key, value]);
  }
  return out;
}

export function loadConfig(opts: {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  flags?: Partial<Record<string, unknown>>;
}): Config {
  const config: Config = structuredClone(DEFAULTS);
  if (existsSync(opts.configFile)) {
    let file: unknown;
    try {
      file = JSON.parse(readFileSync(opts.configFile, "utf8"));
    } catch (err) {
      throw new TeamworkError("invalid_input", `invalid configuration: ${opts.configFile} is not valid JSON (${(err as Error).message})`);
    }
    if (typeof file !== "object" || file === null || Array.isArray(file)) {
      throw new TeamworkError("invalid_input", `invalid configuration: ${opts.configFile} must hold a JSON object`);
    }
    for (const [key, value] of flatten(file as Record<string, unknown>)) set(config, key, value, "config.json");
  }
  const env = opts.env ?? process.env;
  for (const [key, spec] of Object.entries(KEYS)) {
    const value = env[spec.env];
    if (value !== undefined && value !== "") set(config, key, value, "environment");
  }
  for (const [key, value] of Object.entries(opts.flags ?? {})) {
    if (value !== undefined) set(config, key, value, "flag");
  }
  if (config.connections.requestTimeout < config.connections.headersTimeout) {
    throw new TeamworkError("invalid_input", "invalid configuration: connections.requestTimeout must not be shorter than connections.headersTimeout");
  }
  if (config.backoff.cap < config.backoff.base) {
    throw new TeamworkError("invalid_input", "invalid configuration: backoff.cap must not be shorter than backoff.base");
  }
  return config;
}
