// The fsync bound: how many durable commits per second this disk allows one after another.
// An enqueue that is acknowledged only once it is on disk, awaited before the next one is
// sent, cannot beat 1 / (fsync latency), whatever the queue does.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { median } from "./util.mjs";

/** In the same temp folder the daemons' homes use, so on the same file system. */
export function measureFsync(samples = 300) {
  const dir = mkdtempSync(join(tmpdir(), "tw-bench-fsync-"));
  try {
    // Raw: append a small record and fdatasync it, as a WAL commit does.
    const fd = openSync(join(dir, "log"), "a");
    const raw = [];
    const record = Buffer.alloc(128, 1);
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      writeSync(fd, record);
      fdatasyncSync(fd);
      raw.push(performance.now() - t);
    }
    closeSync(fd);
    // SQLite: one autocommit insert per transaction, WAL + synchronous=FULL (teamwork's "full").
    const db = new Database(join(dir, "f.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)");
    const insert = db.prepare("INSERT INTO t (x) VALUES (?)");
    const sqlite = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      insert.run("x");
      sqlite.push(performance.now() - t);
    }
    db.close();
    const rawMs = median(raw);
    const sqliteMs = median(sqlite);
    return { fsyncMs: rawMs, fsyncPerSecond: 1000 / rawMs, sqliteCommitMs: sqliteMs, sqliteCommitsPerSecond: 1000 / sqliteMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
