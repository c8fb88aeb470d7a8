// Auto-start: a command that needs the daemon starts it in the background when none
// answers, then waits until it does. A start that fails says why, with the log's tail.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TeamworkError } from "../lib/errors.js";
import type { Paths } from "../config/paths.js";
import { Client, type ClientOptions } from "./client.js";
import { lazyImport } from "../lib/lazy-import.js";

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

/** The daemon's exit codes that mean something to a starter (see daemon/main.ts). */
const DAEMON_EXIT_ALREADY_RUNNING = 10;
const DAEMON_EXIT_CONFIG = 2;
const DAEMON_EXIT_SCHEMA = 5;

export interface StartOptions {
  paths: Paths;
  /** Passed to the daemon as flags. */
  concurrency?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function logTail(logFile: string, lines = 20, sinceByte = 0): string {
  try {
    const text = readFileSync(logFile, "utf8").slice(sinceByte);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
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
  const logStart = existsSync(paths.logFile) ? statSync(paths.logFile).size : 0;
  const logFd = openSync(paths.logFile, "a", 0o600);
  const { spawn } = await lazyImport<typeof import("node:child_process")>("node:child_process"); // only when a daemon is started
  const child = spawn(process.execPath, daemonArgs(opts), {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: opts.env ?? process.env,
  });
  closeSync(logFd);
  let exited: number | null = null;
  child.on("exit", (code, signal) => (exited = code ?? (signal ? 128 : 1)));
  child.unref();

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const client = new Client({ socket: paths.socket, timeoutMs: 2000 });
  for (;;) {
    try {
      const h = await client.call("health", {});
      return h.pid;
    } catch {
      // not yet
    }
    if (exited !== null && exited !== DAEMON_EXIT_ALREADY_RUNNING) {
      const tail = logTail(paths.logFile, 20, logStart);
      const code: TeamworkError["code"] = exited === DAEMON_EXIT_CONFIG ? "invalid_input" : exited === DAEMON_EXIT_SCHEMA ? "schema_too_new" : "daemon_unreachable";
      throw new TeamworkError(code, `the daemon failed to start (exit code ${exited})${tail ? `:\n${tail}` : ""}`, `full log: ${paths.logFile}`);
    }
    if (Date.now() > deadline) {
      const tail = logTail(paths.logFile, 20, logStart);
      throw new TeamworkError("daemon_unreachable", `the daemon did not answer within ${(opts.timeoutMs ?? 15_000) / 1000}s${tail ? `:\n${tail}` : ""}`, `full log: ${paths.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A client that starts the daemon on its first refused call when allowed. No health check
 * up front: a command costs one round trip, not two.
 */
export function connect(opts: { paths: Paths; autostart: boolean } & Omit<ClientOptions, "socket" | "onUnreachable">): Client {
  return new Client({
    ...opts,
    socket: opts.paths.socket,
    onUnreachable: async (err) => {
      if (!opts.autostart) throw new TeamworkError("daemon_unreachable", err.message, "start it with `teamwork daemon start` (auto-start is off)");
      await startDaemon({ paths: opts.paths });
    },
  });
}
