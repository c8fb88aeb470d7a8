// One daemon per home. The lock is the kernel's (lib/kernel-lock.ts), keyed by the home's
// runtime folder (config/paths.ts, homeLockKey): exactly one starter takes it, and it is
// free again the moment its daemon ends, however it ends.
//
// The pid file (run/daemon.pid) is information only, for people and `daemon stop`: the
// lock's holder writes it after taking the lock, whole, and removes it when it stops. The
// pid-file lock that was here let several daemons share a home (two starters could each
// rename away the other's fresh pid file; an empty or half-written one read as stale).

import { readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { homeLockKey } from "../config/paths.js";
import { lockHolder, takeLock } from "../lib/kernel-lock.js";

export class AlreadyRunning extends Error {
  constructor(readonly pid: number | null) {
    super(`daemon already running${pid ? ` (pid ${pid})` : ""}`);
  }
}

/**
 * Takes the home's lock for the life of this process, then writes the pid file; or throws
 * AlreadyRunning. The runtime folder must exist. There is no release (see kernel-lock.ts).
 * Returns the pid a previous daemon left in the pid file, if any: it crashed.
 */
export async function acquireHomeLock(runtimeDir: string, pidFile: string): Promise<{ where: string; stalePid: number | null }> {
  const key = homeLockKey(runtimeDir);
  const taken = await takeLock(key);
  if (!taken) throw new AlreadyRunning((await lockHolder(key))?.pid ?? null);
  const stalePid = readPid(pidFile);
  writePidFile(pidFile);
  return { where: taken.where, stalePid };
}

/** Writes the pid file whole (a reader never sees it half written), 0600. Only the lock's holder writes it. */
function writePidFile(pidFile: string): void {
  const tmp = `${pidFile}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
  renameSync(tmp, pidFile);
}

/** Removes the pid file if it names this process. */
export function removePidFile(pidFile: string): void {
  if (readPid(pidFile) !== process.pid) return;
  try {
    unlinkSync(pidFile);
  } catch {
    // already gone
  }
}

export function readPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
