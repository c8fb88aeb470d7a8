import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";

/** Error codes that mean "no room left": the write may work once space is freed. */
const NO_SPACE = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && NO_SPACE.has(code);
}

/**
 * A write that failed, saying what it wrote to and why, with the system's `code` kept
 * (ENOSPC, EACCES, …) so callers can tell a full disk from the rest.
 */
export class FileWriteError extends Error {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    const why = isDiskFull(cause) ? `the disk is full (${(cause as Error).message})` : (cause as Error)?.message ?? String(cause);
    super(`could not write ${path}: ${why}; nothing was written`);
    this.name = "FileWriteError";
  }
}

let partialSeq = 0;

/**
 * `<path>.<pid>-<counter>-<random>.partial`: the pid and counter keep writers of one process
 * apart, the random part keeps worker threads (same pid, own counters) apart. The file is
 * opened with O_EXCL, so even a collision fails instead of two writers sharing one file.
 */
function partialName(path: string): string {
  partialSeq = (partialSeq + 1) % 1_000_000;
  return `${path}.${process.pid}-${partialSeq}-${randomBytes(4).toString("hex")}.partial`;
}

/** Writes every byte of `data` at the file's position; a short write is continued, never ignored. */
function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, data.length - done);
    // Linux never returns 0 for a regular file with room; treat it as "no room" rather than spin.
    if (n <= 0) throw Object.assign(new Error("ENOSPC: no space left on device, write returned 0 bytes"), { code: "ENOSPC" });
    done += n;
  }
}

/**
 * Fills a new `<path>.<unique>.partial` by `fill(fd)`, fsyncs it, renames it over `path`, and
 * fsyncs the folder: readers see the old content or the whole new content, never a cut
 * file. On any failure the partial is removed (its space given back) and a FileWriteError
 * is thrown.
 */
function replaceAtomically(path: string, mode: number, fill: (fd: number) => void): void {
  const partial = partialName(path);
  let fd: number | null = null;
  try {
    fd = openSync(partial, "wx", mode);
    fill(fd);
    fsyncSync(fd);
    // close can report a deferred write error (NFS): it must succeed before the rename.
    const closing = fd;
    fd = null;
    closeSync(closing);
    renameSync(partial, path);
  } catch (err) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // Already failing; the descriptor is released either way.
      }
    }
    rmSync(partial, { force: true });
    throw new FileWriteError(path, (err as { code?: string }).code, err);
  }
  fsyncDir(dirname(path));
}

/**
 * Writes a file so that readers see either the old content or the whole new content.
 * Throws a FileWriteError (code ENOSPC on a full disk) if any byte could not be written.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  replaceAtomically(path, mode, (fd) => writeAll(fd, bytes));
}

/** Copies `source` to `path` as writeFileAtomic writes: whole or not at all. */
export function copyFileAtomic(source: string, path: string, mode = 0o600): void {
  const src = openSync(source, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    replaceAtomically(path, mode, (fd) => {
      for (;;) {
        const n = readSync(src, buf, 0, buf.length, null);
        if (n === 0) return;
        writeAll(fd, buf.subarray(0, n));
      }
    });
  } finally {
    closeSync(src);
  }
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  }
}
