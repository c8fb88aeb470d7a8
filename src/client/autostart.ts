// Auto-start: a command that needs the daemon starts it in the background when none
// answers, then waits until it does. A start that fails says why, with the log's tail.
//
// The detached daemon writes its own lines to daemon.log, which it rotates. Its stdout and
// stderr go to daemon.crash.log, never rotated: were they daemon.log, they would follow it
// to daemon.log.1, .2, .3 and then to a deleted file, and a fatal error that Node prints
// (out of memory, an exception the daemon could not log) would be lost.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { homeLockKey } from "../config/paths.js";
import { lockHolder } from "../lib/kernel-lock.js";
import { fileURLToPath } from "node:url";
import { TeamworkError } from "../lib/errors.js";
import type { Paths } from "../config/paths.js";
import { Client, NotAnswering, type ClientOptions } from "./client.js";
import { lazyImport } from "../lib/lazy-import.js";
import { DAEMON_EXIT, errorCodeForDaemonExit } from "../protocol/daemon-exit.js";

// From both src/client and dist/client, this is the compiled daemon.
export const DAEMON_ENTRY = fileURLToPath(new URL("../../dist/daemon/main.js", import.meta.url));

/**
 * V8 settings every launcher of the daemon uses (auto-start, `daemon start --foreground`,
 * the service unit): a small young generation and a heap that favours size. The daemon
 * churns through short-lived objects (a job's records, messages, replies); with V8's
 * defaults its young generation grows to tens of MiB under load. Measured with 20,000
 * queued no-ops and a pool of 3: peak RSS 144-160 MiB without, 88-97 MiB with, at the same
 * throughput (`npm run bench`, workload D).
 */
export const DAEMON_NODE_FLAGS = ["--max-semi-space-size=1", "--optimize-for-size"];


export interface StartOptions {
  paths: Paths;
  /** Passed to the daemon as flags. */
  concurrency?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Past this, daemon.crash.log starts over when a daemon is started (it only holds rare lines). */
const CRASH_LOG_MAX_BYTES = 256 * 1024;

/** The last lines of the log from byte `sinceByte` on (a byte offset, as stat gives sizes). */
export function logTail(logFile: string, lines = 20, sinceByte = 0): string {
  try {
    const text = readFileSync(logFile).subarray(sinceByte).toString("utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * The process holding the home's lock, if any: a daemon, answering or not (starting, hung,
 * or its socket removed). Its pid as it says, or null if it did not say.
 */
export async function lockHolderOf(paths: Paths): Promise<{ pid: number | null } | null> {
  if (!existsSync(paths.runtimeDir)) return null;
  try {
    return await lockHolder(homeLockKey(paths.runtimeDir));
  } catch {
    return null;
  }
}

export async function isRunning(paths: Paths): Promise<boolean> {
  try {
    await new Client({ socket: paths.socket, timeoutMs: 5000 }).call("health", {});
    return true;
  } catch {
    return false;
  }
}

function daemonArgs(opts: StartOptions): string[] {
  // With XDG folders there is no single home: the daemon resolves them as we did.
  const args = [...DAEMON_NODE_FLAGS, DAEMON_ENTRY, ...(opts.paths.explicit ? ["--home", opts.paths.home] : []), "--log-file", opts.paths.logFile];
  if (opts.concurrency !== undefined) args.push("--concurrency", String(opts.concurrency));
  return args;
}

/** Spawns a detached daemon and waits for it to answer. Returns its pid. */
export async function startDaemon(opts: StartOptions): Promise<number> {
  const { paths } = opts;
  if (!existsSync(DAEMON_ENTRY)) {
    throw new TeamworkError("internal", `the daemon is not built (${DAEMON_ENTRY} is missing)`, "run `npm run build` in the teamwork folder");
  }
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const logStart = sizeOf(paths.logFile);
  const crashStart = sizeOf(paths.crashLogFile) > CRASH_LOG_MAX_BYTES ? 0 : sizeOf(paths.crashLogFile);
  const logFd = openSync(paths.crashLogFile, crashStart === 0 ? "w" : "a", 0o600);
  const { spawn } = await lazyImport<typeof import("node:child_process")>("node:child_process"); // only when a daemon is started
  const child = spawn(process.execPath, daemonArgs(opts), {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: opts.env ?? process.env,
  });
  closeSync(logFd);
  let exited: number | null = null;
  let killedBy: NodeJS.Signals | null = null;
  child.on("exit", (code, signal) => {
    exited = code ?? (signal ? 128 : 1);
    killedBy = signal;
  });
  child.unref();

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const client = new Client({ socket: paths.socket, pidFile: paths.pidFile, timeoutMs: 2000 });
  for (;;) {
    try {
      const h = await client.call("health", {});
      return h.pid;
    } catch (err) {
      // Another daemon holds the home and takes connections without answering: frozen.
      if (err instanceof NotAnswering && exited === DAEMON_EXIT.alreadyRunning) throw err;
      // else not yet
    }
    if (exited !== null && exited !== DAEMON_EXIT.alreadyRunning) {
      const tail = startTail(paths, logStart, crashStart);
      const code = errorCodeForDaemonExit(exited, "daemon_unreachable");
      // Killed (out of memory, a signal): nothing it decided; its last words are in the logs.
      const what = killedBy ? `the daemon stopped unexpectedly while starting (${killedBy as string}), log at ${paths.logFile}` : `the daemon failed to start (exit code ${exited})`;
      throw new TeamworkError(code, `${what}${tail ? `:\n${tail}` : ""}`, `full log: ${paths.logFile}`);
    }
    if (Date.now() > deadline) {
      const tail = startTail(paths, logStart, crashStart);
      throw new TeamworkError("daemon_unreachable", `the daemon did not answer within ${(opts.timeoutMs ?? 15_000) / 1000}s${tail ? `:\n${tail}` : ""}`, `full log: ${paths.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** What the daemon wrote since it was started: to its log, and to stderr (a bad configuration is found before the log opens). */
function startTail(paths: Paths, logStart: number, crashStart: number): string {
  return [logTail(paths.crashLogFile, 20, crashStart), logTail(paths.logFile, 20, logStart)].filter(Boolean).join("\n");
}

function readPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * The daemon of this home ended without stopping cleanly (crashed, out of memory, killed):
 * it left its pid file (a clean stop removes it) and no process holds the home's lock. Its
 * pid, or null when it stopped cleanly, never ran, or still runs. With `waitMs`, a daemon
 * still on its way out (holding the lock a moment after its socket closed) is waited for.
 */
export async function stoppedUnexpectedly(paths: Paths, waitMs = 0): Promise<number | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const pid = readPid(paths.pidFile);
    if (pid === null) return null;
    if (!(await lockHolderOf(paths))) return pid;
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the CLI says about a daemon that stopped unexpectedly. */
export function stoppedUnexpectedlyError(paths: Paths, pid: number, duringCall = false): TeamworkError {
  return new TeamworkError(
    "daemon_unreachable",
    `the daemon (pid ${pid}) stopped unexpectedly${duringCall ? " during the call" : ""}, log at ${paths.logFile}`,
    [
      duringCall ? "a change asked for may or may not have been made; check before repeating it. " : "",
      `What it printed last may also be in ${paths.crashLogFile}. \`teamwork daemon start\` starts it again.`,
    ].join(""),
  );
}

/**
 * A client that starts the daemon on its first refused call when allowed. No health check
 * up front: a command costs one round trip, not two. A daemon that had stopped
 * unexpectedly is said so (`onNotice` when a new one is started in its place).
 */
export function connect(
  opts: { paths: Paths; autostart: boolean; onNotice?: (message: string) => void; daemonEnv?: NodeJS.ProcessEnv } & Omit<ClientOptions, "socket" | "onUnreachable" | "explainLoss">,
): Client {
  const { paths, daemonEnv, ...clientOpts } = opts;
  return new Client({
    ...clientOpts,
    socket: paths.socket,
    pidFile: paths.pidFile,
    onUnreachable: async (err) => {
      const crashed = await stoppedUnexpectedly(paths);
      if (!opts.autostart) {
        if (crashed !== null) throw stoppedUnexpectedlyError(paths, crashed);
        throw new TeamworkError("daemon_unreachable", err.message, "start it with `teamwork daemon start` (auto-start is off)");
      }
      if (crashed !== null) opts.onNotice?.(`the daemon (pid ${crashed}) had stopped unexpectedly (log at ${paths.logFile}); starting a new one`);
      await startDaemon({ paths, env: daemonEnv });
    },
    explainLoss: async (duringCall) => {
      const crashed = await stoppedUnexpectedly(paths, 1000);
      return crashed === null ? null : stoppedUnexpectedlyError(paths, crashed, duringCall);
    },
  });
}
