// A lock the kernel holds for a process and frees when the process ends, however it ends
// (kill -9, a crash, the OOM killer). Node has no flock(), so:
//
// - On Linux, a Unix socket bound in the abstract namespace: the kernel lets one socket hold
//   a name at a time. No file takes part, so nothing done to files (a stale, empty or half
//   written pid file, a slow rename, a deleted folder) can let a second holder in. Anyone on
//   the machine can see and connect to an abstract name: a connection is told the holder's
//   pid and closed. Another user who binds the name first makes the lock unavailable (a
//   refusal, never a share).
// - Elsewhere (macOS, the BSDs), flock() on a file taken at open with O_EXLOCK. Not run by
//   the test suite (Linux only).
//
// Node (libuv) binds and connects abstract names padded with NULs to the whole sun_path, so
// `ss` shows the name followed by "@"s; both sides do the same, so they meet.
//
// There is no release: the lock is held until the process ends, so "the lock is free"
// means "its last holder is gone".

import { closeSync, constants, openSync } from "node:fs";
import { connect, createServer } from "node:net";

export interface LockKey {
  /** The abstract socket name (starting with NUL), or null where there is no abstract namespace. */
  abstractName: string | null;
  /** The file flock()ed where there is no abstract namespace. */
  file: string;
}

/** Takes the lock for the life of this process. Returns null when another process holds it. */
export async function takeLock(key: LockKey): Promise<{ where: string } | null> {
  if (key.abstractName === null) return takeFlock(key.file);
  const server = createServer((conn) => {
    conn.on("error", () => {});
    conn.end(`${process.pid}\n`);
  });
  server.maxConnections = 8; // anyone may connect; a flood costs the holder little
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path: key.abstractName! }, () => resolve());
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") return null;
    throw err;
  }
  server.unref(); // held, not waited on
  return { where: `@${key.abstractName.slice(1)}` };
}

/**
 * Whether some process holds the lock, and its pid when it says (null pid: it did not say).
 * Looking does not disturb the lock on Linux: a process taking it meanwhile is not refused.
 */
export function lockHolder(key: LockKey, timeoutMs = 2000): Promise<{ pid: number | null } | null> {
  if (key.abstractName === null) return Promise.resolve(flockHolder(key.file));
  return new Promise((resolve) => {
    let text = "";
    let connected = false;
    const socket = connect({ path: key.abstractName! });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      if (!connected) return resolve(null);
      const pid = Number(text.trim());
      resolve({ pid: Number.isInteger(pid) && pid > 0 ? pid : null });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("connect", () => (connected = true));
    socket.on("data", (c: Buffer) => (text = (text + c.toString("latin1")).slice(0, 32)));
    socket.on("end", finish);
    socket.on("error", finish); // ECONNREFUSED: nobody holds it
  });
}

// <fcntl.h> on macOS and the BSDs; Node does not name them.
const O_SHLOCK = 0x10;
const O_EXLOCK = 0x20;
const held: number[] = []; // descriptors never closed: closing one would release its lock

function takeFlock(file: string): { where: string } | null {
  try {
    held.push(openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK | O_EXLOCK, 0o600));
    return { where: file };
  } catch (err) {
    if (wouldBlock(err)) return null;
    throw err;
  }
}

function flockHolder(file: string): { pid: number | null } | null {
  try {
    // A brief shared lock: a process taking the lock at this very instant is refused once.
    closeSync(openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | O_SHLOCK));
    return null;
  } catch (err) {
    return wouldBlock(err) ? { pid: null } : null;
  }
}

const wouldBlock = (err: unknown) => ["EAGAIN", "EWOULDBLOCK"].includes((err as NodeJS.ErrnoException).code ?? "");
