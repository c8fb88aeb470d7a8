// Open files: every connection, event stream, database file and worker pipe is one. Many
// systems start a process with a soft limit of 1024 open files (systemd's default) and a
// much higher hard limit; a daemon that serves up to connections.max connections should not
// meet the soft one first. Node itself raises its soft limit to the hard one as it starts
// (PlatformInit in node.cc), so under the node binary this only confirms it: the daemon reads
// /proc/self/limits, logs what it has and shows it in `daemon status`. Where the soft limit
// is still lower (a node built or embedded without that step), the daemon asks prlimit
// (util-linux; Node has no setrlimit, and prlimit may change the limits of a process of the
// same user) to raise it; without prlimit, or without /proc, it starts with what it has and
// the log and `daemon status` say why.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** A limit's value: a count, or null for "unlimited". */
export type Limit = number | null;

export interface OpenFileLimits {
  soft: Limit;
  hard: Limit;
}

/** What the daemon has, what it had at start, and why not more. */
export interface DescriptorReport {
  /** The limits the daemon started with (null: unknown, no /proc). */
  before: OpenFileLimits | null;
  /** The limits after the attempt (null: unknown). */
  after: OpenFileLimits | null;
  /** Whether the soft limit was raised. */
  raised: boolean;
  /** Why it was not raised (or why it cannot be known); absent when soft already equals hard or was raised. */
  note?: string;
}

/** The open-files line of a /proc/<pid>/limits text ("Max open files  1024  4096  files"). */
export function parseOpenFileLimits(text: string): OpenFileLimits | null {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return null;
  const value = (s: string): Limit | undefined => (s === "unlimited" ? null : /^\d+$/.test(s) ? Number(s) : undefined);
  const soft = value(m[1]!);
  const hard = value(m[2]!);
  return soft === undefined || hard === undefined ? null : { soft, hard };
}

/** Whether the soft limit is worth raising, and to what (null: it is not). */
export function raiseTarget(l: OpenFileLimits): number | null {
  if (l.hard === null) return null; // unlimited: the kernel caps open files anyway (nr_open); leave it
  if (l.soft === null || l.soft >= l.hard) return null;
  return l.hard;
}

/** The limits of a process from /proc (null: not readable here). */
export function readOpenFileLimits(pid: number | "self" = "self"): OpenFileLimits | null {
  try {
    return parseOpenFileLimits(readFileSync(`/proc/${pid}/limits`, "utf8"));
  } catch {
    return null;
  }
}

const show = (l: Limit) => (l === null ? "unlimited" : String(l));

/**
 * Raises this process's soft limit of open files to its hard limit through prlimit (found
 * on PATH), and says what came of it. Never throws: a daemon starts with the limit it has.
 */
export function raiseOpenFileLimit(opts: { timeoutMs?: number; command?: string } = {}): DescriptorReport {
  const before = readOpenFileLimits();
  if (!before) return { before: null, after: null, raised: false, note: "cannot read /proc/self/limits: the limit is left as it is" };
  const target = raiseTarget(before);
  if (target === null) return { before, after: before, raised: false };
  const r = spawnSync(opts.command ?? "prlimit", [`--pid=${process.pid}`, `--nofile=${target}:${target}`], { timeout: opts.timeoutMs ?? 2_000, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const after = readOpenFileLimits() ?? before;
  const raised = after.soft !== before.soft;
  if (raised && after.soft === after.hard) return { before, after, raised };
  let why: string;
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === "ENOENT") why = "prlimit (util-linux) is not on PATH";
  else if (err?.code === "ETIMEDOUT") why = `prlimit did not finish within ${opts.timeoutMs ?? 2_000} ms`;
  else if (err) why = `prlimit could not be run: ${err.message}`;
  else if (r.status !== 0) why = `prlimit failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? "").trim().split("\n")[0] || "no message"}`;
  else why = "prlimit ran, but the limit did not change";
  return { before, after, raised, note: `soft limit ${show(after.soft)} of hard ${show(after.hard)} open files: ${why}` };
}

/** One line for `daemon status` and the log. */
export function describeOpenFiles(r: DescriptorReport, now: OpenFileLimits | null = r.after): string {
  if (!now) return r.note ?? "unknown";
  const base = now.soft === now.hard ? `${show(now.soft)} (soft = hard)` : `${show(now.soft)} of hard ${show(now.hard)}`;
  if (r.raised && r.before) return `${base}, raised from ${show(r.before.soft)} at start`;
  return r.note && now.soft !== now.hard ? `${base}; not raised: ${r.note.replace(/^.*?: /, "")}` : base;
}
