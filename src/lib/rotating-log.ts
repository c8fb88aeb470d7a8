// A log file that rotates by size: daemon.log → daemon.log.1 → … → daemon.log.<keep>,
// the oldest dropped. Writes are synchronous appends, so a crash loses no line that was
// written, and lines of one process never interleave mid-line. A write never throws: a line
// that cannot be written (the disk is full) is counted, and the count is logged with the
// next line that can be — logging must not take the daemon down with the disk.
//
// The file may be moved or deleted under us (logrotate without copytruncate, a user
// tidying up). Every so often, and at each rotation, the open descriptor is compared with
// what the path names now; when they differ the path is opened again. A descriptor is
// closed only after its replacement is open, and exactly once: a number closed twice may by
// then belong to a client connection. A rotation that fails (a rename refused) is counted,
// never thrown; writing goes on in whatever file the path names.

import { closeSync, fstatSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";

/** How often the path is compared with the open file: at most this many writes apart, or this long. */
const CHECK_EVERY_WRITES = 100;
const CHECK_EVERY_MS = 1000;

export class RotatingLog {
  private fd: number | null = null;
  /** The open file's identity, to notice that the path now names another file (or none). */
  private dev = 0;
  private ino = 0;
  private size = 0;
  /** Rotate when the file would pass this: maxBytes, or further on after a rotation that failed. */
  private limit: number;
  private closed = false;
  /** Lines that could not be written since the last one that could. */
  private dropped = 0;
  private writesSinceCheck = 0;
  private lastCheckAt = 0;
  /** Rotations or reopenings that failed, since the log was opened (reported with the next line). */
  private failures = 0;
  private lastFailure = "";
  private reportedFailures = 0;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep = 3,
    private readonly now: () => number = Date.now,
  ) {
    this.limit = maxBytes;
    // The first open may throw: a log that cannot be opened at all is a start-up error.
    this.adopt(openSync(path, "a", 0o600));
  }

  write(line: string): void {
    if (this.closed) return;
    try {
      this.checkPath();
      if (this.failures > this.reportedFailures) {
        this.append(`${new Date(this.now()).toISOString()} warn  log.rotation_failed count=${this.failures - this.reportedFailures} error=${JSON.stringify(this.lastFailure)}\n`);
        this.reportedFailures = this.failures;
      }
      if (this.dropped > 0) {
        this.append(`${new Date(this.now()).toISOString()} warn  log.lines_dropped count=${this.dropped} reason="could not write to ${this.path} (disk full?)"\n`);
        this.dropped = 0;
      }
      this.append(line);
    } catch {
      this.dropped++;
    }
  }

  /** Rotations and reopenings that failed since the log was opened. */
  get failureCount(): number {
    return this.failures;
  }

  private append(line: string): void {
    const buf = Buffer.from(line);
    if (this.size > 0 && this.size + buf.length > this.limit) this.rotate();
    if (this.fd === null) throw new Error("no log file open");
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
  }

  /** Reopens the path if it no longer names the open file (moved or deleted). Cheap: a stat now and then. */
  private checkPath(): void {
    const now = this.now();
    if (this.fd !== null && ++this.writesSinceCheck < CHECK_EVERY_WRITES && now - this.lastCheckAt < CHECK_EVERY_MS) return;
    this.writesSinceCheck = 0;
    this.lastCheckAt = now;
    if (this.fd === null || !this.pathNamesOpenFile()) this.reopen();
  }

  private pathNamesOpenFile(): boolean {
    try {
      const st = statSync(this.path);
      return st.dev === this.dev && st.ino === this.ino;
    } catch {
      return false;
    }
  }

  private rotate(): void {
    // Shift only what the path still names: a log moved away by someone else is theirs.
    if (this.pathNamesOpenFile()) {
      try {
        rmSync(`${this.path}.${this.keep}`, { force: true });
        for (let i = this.keep - 1; i >= 1; i--) renameIfExists(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        renameSync(this.path, `${this.path}.1`);
      } catch (err) {
        this.fail(err);
        // Go on in this file, and try again once it has grown by another maxBytes, not at every line.
        this.limit = this.size + this.maxBytes;
        return;
      }
    }
    this.reopen();
  }

  /** Opens the path (creating it) and only then closes the previous descriptor. */
  private reopen(): void {
    let fd: number;
    try {
      fd = openSync(this.path, "a", 0o600);
    } catch (err) {
      this.fail(err); // keep writing to the file still open, if any
      return;
    }
    const old = this.fd;
    this.adopt(fd);
    if (old !== null) closeQuietly(old);
  }

  private adopt(fd: number): void {
    const st = fstatSync(fd);
    this.fd = fd;
    this.dev = st.dev;
    this.ino = st.ino;
    this.size = st.size;
    this.limit = this.maxBytes;
  }

  private fail(err: unknown): void {
    this.failures++;
    this.lastFailure = (err as Error)?.message ?? String(err);
  }

  close(): void {
    this.closed = true;
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeQuietly(fd);
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing more to do with it
  }
}
