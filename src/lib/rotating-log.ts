// A log file that rotates by size: daemon.log → daemon.log.1 → … → daemon.log.<keep>,
// the oldest dropped. Writes are synchronous appends, so a crash loses no line that was
// written, and lines of one process never interleave mid-line. A write never throws: a line
// that cannot be written (the disk is full) is counted, and the count is logged with the
// next line that can be — logging must not take the daemon down with the disk.

import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

export class RotatingLog {
  private fd: number;
  private size: number;
  /** Lines that could not be written since the last one that could. */
  private dropped = 0;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep = 3,
  ) {
    this.fd = openSync(path, "a", 0o600);
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): void {
    try {
      if (this.dropped > 0) {
        this.append(`${new Date().toISOString()} warn  log.lines_dropped count=${this.dropped} reason="could not write to ${this.path} (disk full?)"\n`);
        this.dropped = 0;
      }
      this.append(line);
    } catch {
      this.dropped++;
    }
  }

  private append(line: string): void {
    const buf = Buffer.from(line);
    if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    writeSync(this.fd, buf);
    this.size += buf.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "a", 0o600);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}
