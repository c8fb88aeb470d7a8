// One daemon per home. The pid file, created with O_EXCL, is the lock; a pid file whose
// process is gone (or is no longer a teamwork daemon) is stale and is taken over.

import { readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";

export class AlreadyRunning extends Error {
  constructor(readonly pid: number) {
    super(`daemon already running (pid ${pid})`);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A recycled pid may belong to anything (dbus-daemon, gpg-agent --daemon): on Linux,
  // check it still runs teamwork's daemon entry point.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.split("\0").some((arg) => /(^|\/)daemon\/main\.js$/.test(arg));
  } catch {
    return true;
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

/** Takes the lock or throws AlreadyRunning. Returns whether a stale lock was cleared. */
export function acquireLock(pidFile: string): { staleCleared: boolean } {
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeFileSync(pidFile, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return { staleCleared: tries > 0 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const pid = readPid(pidFile);
    if (pid !== null && pid !== process.pid && isAlive(pid)) throw new AlreadyRunning(pid);
    // Stale: move it aside (rename is atomic, so two racing starters cannot both delete a fresh lock).
    try {
      const aside = `${pidFile}.stale.${process.pid}`;
      renameSync(pidFile, aside);
      unlinkSync(aside);
    } catch {
      // Someone else cleared it first; try again.
    }
  }
  throw new Error(`could not take the lock ${pidFile}`);
}

export function releaseLock(pidFile: string): void {
  if (readPid(pidFile) === process.pid) {
    try {
      unlinkSync(pidFile);
    } catch {
      // already gone
    }
  }
}
