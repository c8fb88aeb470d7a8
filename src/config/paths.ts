// Where teamwork keeps its files. With --home / TEAMWORK_HOME everything lives under one
// folder (tests use a fresh one each); otherwise the XDG base directories are used.
// Both the CLI (to find the socket) and the daemon (to create it) resolve paths here.

import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TeamworkError } from "../lib/errors.js";

export interface Paths {
  /** The folder reported as "home": the --home folder, or the XDG data folder. */
  home: string;
  configFile: string;
  dataDir: string;
  database: string;
  uploads: string;
  uploadsTmp: string;
  reports: string;
  outbox: string;
  thumbs: string;
  stateDir: string;
  logFile: string;
  /**
   * A detached daemon's stdout and stderr: what it writes before its log opens (a bad
   * configuration) and what Node itself prints on a fatal error. Not rotated, so a crash
   * message never lands in a rotated-away file.
   */
  crashLogFile: string;
  /** Readable by the owner only (0700): holds the pid file and, usually, the socket. */
  runtimeDir: string;
  pidFile: string;
  socket: string;
  /** True when a home folder was given (--home / TEAMWORK_HOME) rather than XDG folders. */
  explicit: boolean;
  /** True when the socket had to move to a short path under /tmp (see below). */
  socketRelocated: boolean;
}

/**
 * sun_path is 108 bytes on Linux (104 on macOS) including the NUL. A socket path longer
 * than this cannot be bound, so a long home puts its socket in a per-user folder under the
 * system temp dir, named by a hash of the runtime folder, which both sides compute the same way.
 */
export const MAX_SOCKET_PATH = 100;

export function resolvePaths(opts: { home?: string; env?: NodeJS.ProcessEnv } = {}): Paths {
  const env = opts.env ?? process.env;
  const explicit = opts.home ?? (env.TEAMWORK_HOME || undefined);
  let dataDir: string, stateDir: string, runtimeDir: string, configFile: string, home: string;
  if (explicit) {
    home = resolve(explicit);
    dataDir = home;
    stateDir = home;
    runtimeDir = join(home, "run");
    configFile = join(home, "config.json");
  } else {
    const h = homedir();
    dataDir = join(env.XDG_DATA_HOME || join(h, ".local", "share"), "teamwork");
    stateDir = join(env.XDG_STATE_HOME || join(h, ".local", "state"), "teamwork");
    configFile = join(env.XDG_CONFIG_HOME || join(h, ".config"), "teamwork", "config.json");
    runtimeDir = env.XDG_RUNTIME_DIR
      ? join(env.XDG_RUNTIME_DIR, "teamwork")
      : // Shared by every HOME of this uid: a folder per data dir keeps their daemons apart.
        join(tmpdir(), `teamwork-${uid()}`, `run-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
    home = dataDir;
  }
  let socket = join(runtimeDir, "daemon.sock");
  let socketRelocated = false;
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    const tag = createHash("sha256").update(runtimeDir).digest("hex").slice(0, 16);
    socket = join(shortSocketDir(), `${tag}.sock`);
    socketRelocated = true;
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      throw new TeamworkError(
        "invalid_input",
        `the daemon's socket path would be longer than ${MAX_SOCKET_PATH} bytes (${socket})`,
        "use a shorter --home, or set TMPDIR to a short folder such as /tmp",
      );
    }
  }
  return {
    home,
    configFile,
    dataDir,
    database: join(dataDir, "teamwork.db"),
    uploads: join(dataDir, "uploads"),
    uploadsTmp: join(dataDir, "uploads", "tmp"),
    reports: join(dataDir, "reports"),
    outbox: join(dataDir, "outbox"),
    thumbs: join(dataDir, "thumbs"),
    stateDir,
    logFile: join(stateDir, "daemon.log"),
    crashLogFile: join(stateDir, "daemon.crash.log"),
    runtimeDir,
    pidFile: join(runtimeDir, "daemon.pid"),
    socket,
    socketRelocated,
    explicit: Boolean(explicit),
  };
}

/**
 * The key of the home's lock (lib/kernel-lock.ts): one daemon per runtime folder, as the
 * socket and pid file there have one owner. Its real path, so that two spellings of one
 * folder (a symlink, "..") are one lock; with the uid, as abstract names are machine-wide.
 * Throws if the folder does not exist.
 */
export function homeLockKey(runtimeDir: string): { abstractName: string | null; file: string } {
  const real = realpathSync(runtimeDir);
  const hash = createHash("sha256").update(`${uid()}\0${real}`).digest("hex").slice(0, 32);
  return { abstractName: process.platform === "linux" ? `\0teamwork-lock-${hash}` : null, file: join(real, "daemon.lock") };
}

export function shortSocketDir(): string {
  return join(tmpdir(), `teamwork-${uid()}`);
}

function uid(): string {
  return typeof process.getuid === "function" ? String(process.getuid()) : "user";
}
