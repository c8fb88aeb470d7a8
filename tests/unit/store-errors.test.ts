// Store errors are neutral: the SQLite store turns what SQLite says (locked, damaged,
// read-only, full, a newer schema, cannot open) into a StoreError of one kind, at every
// public method and at open; the protocol's one table says what each kind means to a client.
// Real SQLite throughout: a second connection holds the lock, real files are damaged.

import { execFileSync } from "node:child_process";
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { StoreError } from "../../src/store/errors.js";
import { sqliteFailure } from "../../src/store/sqlite/errors.js";
import type { Store } from "../../src/store/types.js";
import { HTTP_STATUS, exitCodeFor, storeFailure } from "../../src/protocol/errors.js";
import { DAEMON_EXIT } from "../../src/protocol/daemon-exit.js";
import { taskEventPolicy } from "../../src/board/task-events.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "tw-store-errors-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "teamwork.db");
}

async function open(path: string): Promise<Store> {
  const store = await openStore({ kind: "sqlite", path }, { durability: "process", taskEvents: taskEventPolicy });
  cleanups.push(() => store.close());
  return store;
}

/** The StoreError a promise rejects with (it must reject with one). */
async function storeErrorOf(p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, "a StoreError").toBeInstanceOf(StoreError);
  return err as StoreError;
}

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("the SQLite store's errors", () => {
  it("a database locked by another process (BEGIN EXCLUSIVE): busy, and the write did not happen", async () => {
    const path = tempDb();
    const store = await open(path);
    const other = new Database(path);
    cleanups.push(() => void other.close());
    other.exec("BEGIN EXCLUSIVE");
    const err = await storeErrorOf(store.boards.create("web", Date.now()));
    expect([err.kind, err.reason, err.driverCode]).toEqual(["busy", "database is locked", "SQLITE_BUSY"]);
    other.exec("ROLLBACK");
    expect(await store.boards.get("web")).toBeNull();
    expect((await store.boards.create("web", Date.now())).name).toBe("web");
  });

  it("a file that is not a database: corrupt at open, and the file is left alone", async () => {
    const path = tempDb();
    writeFileSync(path, Buffer.alloc(65_536, 0x5a));
    const before = sha(path);
    const err = await storeErrorOf(openStore({ kind: "sqlite", path }, { durability: "full", taskEvents: taskEventPolicy }));
    expect(err.kind).toBe("corrupt");
    expect(err.reason).toMatch(/not a database/);
    expect(sha(path)).toBe(before);
  });

  it("garbage inside a table: corrupt when a method reads it", async () => {
    const path = tempDb();
    const store = await open(path);
    for (let i = 0; i < 200; i++) {
      await store.tasks.create({ title: `task ${i} ${"x".repeat(300)}`, board: "default", description: "d".repeat(1000), assignee: null, dueDate: null, status: "todo" }, Date.now());
    }
    await store.close();
    const ro = new Database(path, { readonly: true });
    const pageSize = ro.pragma("page_size", { simple: true }) as number;
    const pages = ro.prepare<[], { pageno: number }>("SELECT pageno FROM dbstat WHERE name = 'tasks' AND pagetype = 'leaf' ORDER BY pageno").all();
    ro.close();
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa7), 0, pageSize, (pages[Math.floor(pages.length / 2)]!.pageno - 1) * pageSize);
    closeSync(fd);

    const reopened = await open(path);
    const err = await storeErrorOf(reopened.tasks.list({ limit: 1_000 }));
    expect([err.kind, err.driverCode]).toEqual(["corrupt", "SQLITE_CORRUPT"]);
    expect(err.reason).toMatch(/malformed/);
  });

  it("a read-only database file: readonly on the first write, reads still answered", async (ctx) => {
    const path = tempDb();
    const store = await open(path);
    await store.boards.create("web", Date.now());
    await store.close();
    // Root ignores file modes: make the file immutable instead (ext4, xfs, btrfs).
    if (process.getuid?.() === 0) {
      try {
        execFileSync("chattr", ["+i", path], { stdio: "pipe" });
      } catch (e) {
        console.warn(`skipped: cannot make ${path} immutable as root (${(e as Error).message.split("\n")[0]})`);
        ctx.skip();
        return;
      }
      cleanups.push(() => void execFileSync("chattr", ["-i", path], { stdio: "pipe" }));
    } else {
      chmodSync(path, 0o444);
    }
    const readonly = await open(path);
    expect((await readonly.boards.get("web"))?.name).toBe("web");
    const err = await storeErrorOf(readonly.boards.create("ops", Date.now()));
    expect([err.kind, err.driverCode]).toEqual(["readonly", "SQLITE_READONLY"]);
    expect(err.reason).toMatch(/readonly database/);
  });

  it("a schema from a newer teamwork: too_new at open, with the versions, and the file is left alone", async () => {
    const path = tempDb();
    await (await open(path)).close();
    const raw = new Database(path);
    raw.pragma("user_version = 999");
    raw.close();
    const before = sha(path);
    const err = await storeErrorOf(openStore({ kind: "sqlite", path }, { durability: "full", taskEvents: taskEventPolicy }));
    expect(err.kind).toBe("too_new");
    expect(err.reason).toMatch(/newer teamwork \(schema 999, this version knows up to \d+\)/);
    expect(sha(path)).toBe(before);
  });

  it("a folder that does not exist: unavailable at open", async () => {
    const path = join(tempDb(), "no-such-folder", "teamwork.db");
    const err = await storeErrorOf(openStore({ kind: "sqlite", path }, { durability: "full", taskEvents: taskEventPolicy }));
    expect(err.kind).toBe("unavailable");
    expect(err.reason).toMatch(/directory does not exist/);
  });

  it("a full database (a real SQLITE_FULL from max_page_count): full", () => {
    const db = new Database(":memory:");
    cleanups.push(() => void db.close());
    db.exec("CREATE TABLE t (x)");
    db.pragma("max_page_count = 2");
    let thrown: unknown = null;
    try {
      for (let i = 0; i < 100; i++) db.prepare("INSERT INTO t VALUES (?)").run("x".repeat(1_000));
    } catch (e) {
      thrown = e;
    }
    const err = sqliteFailure(thrown);
    expect(err).toBeInstanceOf(StoreError);
    expect([(err as StoreError).kind, (err as StoreError).reason]).toEqual(["full", "database or disk is full"]);
  });

  it("leaves errors that are not SQLite's alone", () => {
    const mine = new Error("a bug of ours");
    expect(sqliteFailure(mine)).toBe(mine);
  });
});

describe("what each kind of store error means to a client (protocol/errors.ts)", () => {
  it("says what happened in words, with the driver's reason, and picks the status and exit codes", () => {
    const cases = [
      ["busy", "database is locked", /^the database is locked by another process; nothing was changed: database is locked$/, 503],
      ["full", "database or disk is full", /^the disk is full; nothing was changed: database or disk is full$/, 503],
      ["readonly", "attempt to write a readonly database", /^the database is read-only; nothing was changed/, 503],
      ["corrupt", "database disk image is malformed", /^the database is damaged; nothing was changed: database disk image is malformed$/, 503],
      ["unavailable", "disk I/O error", /^the database failed; nothing was changed: disk I\/O error$/, 503],
    ] as const;
    for (const [kind, reason, message, status] of cases) {
      const e = storeFailure(new StoreError(kind, reason, { driverCode: "X" }));
      expect(e.message).toMatch(message);
      expect(e.message, "the driver's code is for logs only").not.toContain("X");
      expect(HTTP_STATUS[e.code]).toBe(status);
      expect(exitCodeFor(e.code)).toBe(1);
      expect(e.hint).toBeTruthy();
    }
    const tooNew = storeFailure(new StoreError("too_new", "the database was written by a newer teamwork (schema 9, this version knows up to 6)"));
    expect([tooNew.code, exitCodeFor(tooNew.code), tooNew.message]).toEqual(["schema_too_new", 5, "the database was written by a newer teamwork (schema 9, this version knows up to 6)"]);
    expect(tooNew.hint).toMatch(/upgrade teamwork/);
  });

  it("gives the daemon's start-up exit code for each kind", async () => {
    const { STORE_FAILURES } = await import("../../src/protocol/errors.js");
    expect(STORE_FAILURES.too_new.daemonExit).toBe(DAEMON_EXIT.schemaTooNew);
    for (const kind of ["unavailable", "busy", "full", "corrupt", "readonly", "unreachable"] as const) expect(STORE_FAILURES[kind].daemonExit).toBe(DAEMON_EXIT.failed);
  });

  it("a database that cannot be reached: 'database unreachable: <server>: <reason>', 503, exit 3; what a write's client is told by its outcome", () => {
    const reason = "team@db.example:5432/teamwork: no answer within 4 s";
    const none = storeFailure(new StoreError("unreachable", reason));
    expect([none.code, HTTP_STATUS[none.code], exitCodeFor(none.code), none.message]).toEqual(["database_unreachable", 503, 3, `database unreachable: ${reason}; nothing was changed`]);
    expect(none.hint).toMatch(/check the database server and the network/);
    // A commit sent and never answered: the write may have been applied.
    const unknown = storeFailure(new StoreError("unreachable", reason, { outcome: "unknown" }));
    expect(unknown.message).toBe(`database unreachable: ${reason}`);
    expect(unknown.hint).toMatch(/may or may not have been made; check before repeating it/);
    // A read changes nothing either way: neither is said.
    const read = storeFailure(new StoreError("unreachable", reason, { outcome: "unknown" }), { read: true });
    expect(read.message).toBe(`database unreachable: ${reason}`);
    expect(read.hint).not.toMatch(/may or may not/);
  });
});
