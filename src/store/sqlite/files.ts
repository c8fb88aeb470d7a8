// Files on SQLite: each file one BLOB in the database file, beside the rest of the data (one
// file to back up, and a write is atomic with the rows it belongs to).
//
// A file is read whole, in one slice. better-sqlite3 has no incremental blob I/O, and SQLite
// reads a BLOB whole to take a substr() of it: reading 32 MiB in 1 MiB substr() slices took
// 1,000 ms here against 50 ms for the whole value (n slices read n times the bytes). The
// whole value is one Buffer, which is what a handler wants anyway (readAll).

import Database from "better-sqlite3";
import type { Db } from "./open.js";
import { guarded, sqliteFailure } from "./errors.js";
import type { FileStore, NewFile, StoredFile } from "../types.js";
import { digestOf, FILE_COLUMNS, ownerColumn, toStoredFile, type FileRow } from "../rows.js";
import { StoreError } from "../errors.js";
import { UPLOAD_FILES } from "../../protocol/files.js";

type Digest = { size: number; sha256: string };

/** Inserts a file of an owner, replacing one of the same name: the statements both the artifacts and the attachments use. */
export function fileWriter(db: Db): (owner: { column: "job_id" | "attachment_id"; id: number }, file: NewFile & Digest, now: number) => StoredFile {
  const remove = {
    job_id: db.prepare<[number, string]>(`DELETE FROM files WHERE job_id = ? AND name = ?`),
    attachment_id: db.prepare<[number, string]>(`DELETE FROM files WHERE attachment_id = ? AND name = ?`),
  };
  const insert = {
    job_id: db.prepare(`INSERT INTO files (job_id, name, media_type, size, sha256, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${FILE_COLUMNS}`),
    attachment_id: db.prepare(`INSERT INTO files (attachment_id, name, media_type, size, sha256, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${FILE_COLUMNS}`),
  };
  return (owner, file, now) => {
    remove[owner.column].run(owner.id, file.name);
    return toStoredFile(insert[owner.column].get(owner.id, file.name, file.mediaType, file.size, file.sha256, now, file.bytes) as FileRow);
  };
}

export function sqliteFiles(db: Db): FileStore {
  const write = fileWriter(db);
  const running = db.prepare<[number, number], { id: number }>(`SELECT id FROM jobs WHERE id = ? AND status = 'running' AND attempts = ?`);
  const getByJob = db.prepare<[number, string], FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE job_id = ? AND name = ?`);
  const getByAttachment = db.prepare<[number, string], FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE attachment_id = ? AND name = ?`);
  const listByJob = db.prepare<[number], FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE job_id = ? ORDER BY name`);
  const listByAttachment = db.prepare<[number], FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE attachment_id = ? ORDER BY name`);
  const byId = db.prepare<[number], FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE id = ?`);
  const bytesOf = db.prepare<[number], { data: Buffer }>(`SELECT data FROM files WHERE id = ?`);
  const original = db.prepare<[number], { id: number; upload_name: string }>(
    `SELECT f.id, a.name AS upload_name FROM attachments a JOIN files f ON f.attachment_id = a.id AND f.name = '${UPLOAD_FILES.original}' WHERE a.id = ?`,
  );
  // The fence and the write in one write transaction: the job cannot move on in between.
  const put = db.transaction((jobId: number, attempt: number, file: NewFile & Digest, now: number): StoredFile | null => {
    if (!running.get(jobId, attempt)) return null;
    return write({ column: "job_id", id: jobId }, file, now);
  });

  const readWhole = (id: number): { file: StoredFile; bytes: Buffer } | null => {
    // One read transaction: the description and the bytes are of one version.
    const read = db.transaction(() => {
      const row = byId.get(id);
      if (!row) return null;
      const data = bytesOf.get(id)!.data;
      return { file: toStoredFile(row), bytes: data };
    });
    return read();
  };

  const checked = (whole: { file: StoredFile; bytes: Buffer } | null) => {
    if (whole && whole.bytes.length !== whole.file.size) throw new StoreError("corrupt", `file ${whole.file.id} holds ${whole.bytes.length} bytes, ${whole.file.size} were recorded`);
    return whole;
  };

  return {
    async putArtifact(at, file, now) {
      // Hashed before the write lock is taken: the lock is held for the insert alone.
      return put.immediate(at.jobId, at.attempt, { ...file, ...digestOf(file.bytes) }, now);
    },
    async get(owner, name) {
      const o = ownerColumn(owner);
      const row = o.column === "job_id" ? getByJob.get(o.id, name) : getByAttachment.get(o.id, name);
      return row ? toStoredFile(row) : null;
    },
    async list(owner) {
      const o = ownerColumn(owner);
      return (o.column === "job_id" ? listByJob.all(o.id) : listByAttachment.all(o.id)).map(toStoredFile);
    },
    async open(id) {
      const whole = readWhole(id);
      if (!whole) return null;
      return {
        file: whole.file,
        chunks: (async function* () {
          yield whole.bytes;
        })(),
      };
    },
    async readAll(id) {
      return checked(readWhole(id));
    },
    async readUpload(attachmentId) {
      const o = original.get(attachmentId);
      const whole = o ? checked(readWhole(o.id)) : null;
      return o && whole ? { uploadName: o.upload_name, ...whole } : null;
    },
  };
}

/**
 * The files part for a worker (ctx.files): a connection of the worker's own, opened on first
 * use. It writes (artifacts) while the daemon writes too: SQLite takes one writer at a time,
 * so it waits up to 5 s for the daemon's lock; the daemon waits for its, at most one
 * artifact's insert (32 MiB: 170 ms idle, 240-320 ms loaded, here), and past its own 250 ms
 * a daemon write answers busy (store/sqlite/open.ts). The bytes are hashed before the lock.
 */
export function openSqliteFilesPort(path: string): FileStore {
  let files: FileStore | null = null;
  const port = (): FileStore => {
    if (!files) {
      const db = new Database(path, { fileMustExist: true });
      db.pragma("busy_timeout = 5000");
      db.pragma("foreign_keys = ON");
      db.pragma("synchronous = FULL");
      files = guarded(sqliteFiles(db));
    }
    return files;
  };
  return {
    putArtifact: (at, file, now) => guardedCall(() => port().putArtifact(at, file, now)),
    get: (owner, name) => guardedCall(() => port().get(owner, name)),
    list: (owner) => guardedCall(() => port().list(owner)),
    open: (id) => guardedCall(() => port().open(id)),
    readAll: (id) => guardedCall(() => port().readAll(id)),
    readUpload: (id) => guardedCall(() => port().readUpload(id)),
  };
}

/** Opening the connection can fail too: as a StoreError, like every other failure of the port. */
async function guardedCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw sqliteFailure(err);
  }
}
