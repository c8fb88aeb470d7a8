// What the error cases need to do to a store of each kind from outside it: hold its lock from
// another process, damage its data, stamp it with a newer schema. The cases themselves
// (errors.test.ts) are the same for every kind; only these differ.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, fstatSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import type { StoreLocation } from "../../src/store/index.js";

export interface LockHolder {
  /** The holding process. */
  process: ChildProcess;
  /** Lets go (the holder rolls back and exits), and waits until it has. */
  release(): Promise<void>;
  /** Kills the holder (SIGKILL) without letting go, and waits until it is gone. */
  kill(): Promise<void>;
}

export interface Breakers {
  /** Another process takes the store's write lock; resolves once it holds it. */
  holdWriteLock(where: StoreLocation): Promise<LockHolder>;
  /** Damages the stored rows of one table (every store handle must be reopened to notice). */
  damageTable(where: StoreLocation, table: string): void;
  /** Replaces the whole store with garbage (its handles must be closed first). */
  replaceWithGarbage(where: StoreLocation): void;
  /** Marks the store as written by a newer teamwork (its handles must be closed first). */
  markNewer(where: StoreLocation): void;
}

const LOCK_HOLDER = fileURLToPath(new URL("./lock-holder.mjs", import.meta.url));
const PG_LOCK_HOLDER = fileURLToPath(new URL("./pg-lock-holder.mjs", import.meta.url));

const pathOf = (where: StoreLocation): string => {
  if (where.kind !== "sqlite") throw new Error(`not a SQLite location: ${where.kind}`);
  return where.path;
};
const urlOf = (where: StoreLocation): string => {
  if (where.kind !== "postgres") throw new Error(`not a PostgreSQL location: ${where.kind}`);
  return where.url;
};

/** Runs a holder script; resolves once it printed "locked". */
async function spawnHolder(script: string, arg: string): Promise<LockHolder> {
  const child = spawn(process.execPath, [script, arg], { stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("locked\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`lock holder exited with ${code} before locking: ${err}`)));
  });
  return {
    process: child,
    async release() {
      child.stdin!.end();
      await exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

const sqlite: Breakers = {
  holdWriteLock: (where) => spawnHolder(LOCK_HOLDER, pathOf(where)),

  damageTable(where, table) {
    const path = pathOf(where);
    const db = new Database(path, { fileMustExist: true });
    db.pragma("wal_checkpoint(TRUNCATE)"); // every row in the main file, none left in the log
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const pages = db.prepare<[string], { pageno: number }>("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").all(table);
    db.close();
    if (pages.length === 0) throw new Error(`table ${table} has no leaf pages to damage`);
    const fd = openSync(path, "r+");
    for (const { pageno } of pages) writeSync(fd, Buffer.alloc(pageSize, 0xa7), 0, pageSize, (pageno - 1) * pageSize);
    closeSync(fd);
  },

  replaceWithGarbage(where) {
    const path = pathOf(where);
    for (const suffix of ["-wal", "-shm"]) rmSync(path + suffix, { force: true });
    writeFileSync(path, Buffer.alloc(65_536, 0x5a));
  },

  markNewer(where) {
    const db = new Database(pathOf(where), { fileMustExist: true });
    db.pragma("user_version = 999");
    db.close();
  },
};

// PostgreSQL. Damage is real damage on disk: pages of the relation's file overwritten, which
// PostgreSQL reports as data_corrupted ("invalid page in block ...") when it reads them. It
// must read them from the file, not from its shared buffers, which still hold the good
// pages; so the database is first copied file by file (CREATE DATABASE ... STRATEGY
// FILE_COPY, which never goes through shared buffers) under its own name, and the copy is
// damaged. Needs psql, and write access to the server's data directory (root, or the
// postgres user, on this machine kind).

/** Runs SQL with psql on the database of `url` (or another database of its server); returns its output. */
function psql(url: string, sql: string, database?: string): string {
  const u = new URL(url);
  if (database !== undefined) u.pathname = `/${database}`;
  return execFileSync("psql", [u.toString(), "-XqtA", "-v", "ON_ERROR_STOP=1", "-c", sql], { encoding: "utf8" }).trim();
}

const dbName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Remakes the database as a file-level copy of itself, so that none of its pages are in shared buffers. */
function recopy(url: string, prepare: string): void {
  const name = dbName(url);
  const old = `${name}_old`;
  if (prepare) psql(url, prepare);
  psql(url, "CHECKPOINT");
  psql(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${literal(name)} AND pid <> pg_backend_pid()`, "postgres");
  psql(url, `ALTER DATABASE ${ident(name)} RENAME TO ${ident(old)}`, "postgres");
  psql(url, `CREATE DATABASE ${ident(name)} TEMPLATE ${ident(old)} STRATEGY FILE_COPY`, "postgres");
  psql(url, `DROP DATABASE ${ident(old)} WITH (FORCE)`, "postgres");
}

/** Overwrites every page of these relations' main files with garbage. */
function garble(url: string, relations: string[]): void {
  const dataDir = psql(url, "SHOW data_directory");
  for (const rel of relations) {
    const file = `${dataDir}/${psql(url, `SELECT pg_relation_filepath(${literal(rel)})`)}`;
    const fd = openSync(file, "r+");
    const size = fstatSync(fd).size;
    if (size === 0) throw new Error(`relation ${rel} has no pages to damage`);
    writeSync(fd, Buffer.alloc(size, 0xa7), 0, size, 0);
    closeSync(fd);
  }
}

const postgres: Breakers = {
  holdWriteLock: (where) => spawnHolder(PG_LOCK_HOLDER, urlOf(where)),

  damageTable(where, table) {
    const url = urlOf(where);
    // Vacuumed first, as SQLite's indexes are: what an index alone can answer (a count per
    // board) is still answered; only reads of the rows themselves meet the damage.
    recopy(url, `VACUUM (FREEZE, ANALYZE) ${ident(table)}`);
    garble(url, [table]);
  },

  replaceWithGarbage(where) {
    const url = urlOf(where);
    recopy(url, "");
    const relations = psql(url, "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 0");
    garble(url, relations.split("\n").filter(Boolean));
  },

  markNewer(where) {
    psql(urlOf(where), "INSERT INTO schema_migrations (version, name) VALUES (999, '999_from_a_newer_teamwork.sql')");
  },
};

export const BREAKERS: Record<StoreLocation["kind"], Breakers> = { sqlite, postgres };
