// Files on PostgreSQL: each file one bytea, stored EXTERNAL (out of line, uncompressed:
// migration 004), shared by every node of a team.
//
// Writing: the bytes go as one binary parameter (node-pg sends a Buffer as it is, not as hex
// text), in one transaction with the fence and the removal of an earlier version.
// Reading: in slices of READ_SLICE_BYTES with substring(), which on an EXTERNAL value fetches
// only the TOAST chunks the slice covers. A whole select would come back as hex text twice
// the value's size, then be decoded into a third copy; by slices, what a read holds at once
// is one slice (and its hex), whatever the file's size. Each slice is its own statement:
// a file replaced or deleted between two slices fails the read (its id is gone: a new
// version has a new id), so a reader never mixes two versions.

import type pg from "pg";
import type { FileStore, NewFile, StoredFile } from "../types.js";
import { digestOf, FILE_COLUMNS, ownerColumn, toStoredFile, type FileRow } from "../rows.js";
import { StoreError } from "../errors.js";
import { UPLOAD_FILES } from "../../protocol/files.js";
import { createPool, inTransaction, longStatement, STATEMENT_TIMEOUT_MS, targetOf, ts, type Target } from "./connect.js";
import { guarded, pgFailure, type GuardContext } from "./errors.js";

/** Bytes one slice of a read carries. */
export const READ_SLICE_BYTES = 1024 * 1024;

type Queryable = Pick<pg.ClientBase, "query">;

/**
 * The slowest rate a file's bytes may go into the database at before its write is called
 * stuck: 2 MiB/s. Measured here (PostgreSQL 15 on loopback, the 2-core machine at load 11):
 * 8 MiB in 0.37 s, 32 MiB in 1.5 s, 128 MiB in 7.3 s, 256 MiB in 12.8 s (18–22 MiB/s); the
 * bound leaves 10× for a slower disk or network.
 */
export const FILE_WRITE_MIN_BYTES_PER_MS = (2 * 1024 * 1024) / 1000;

/** How long a file's write may take: a statement's usual deadline, plus its bytes at the slowest rate. */
export const fileWriteDeadlineMs = (bytes: number): number => STATEMENT_TIMEOUT_MS + Math.ceil(bytes / FILE_WRITE_MIN_BYTES_PER_MS);

/** Inserts a file of an owner, replacing one of the same name (inside the caller's transaction). */
export async function writeFile(c: Queryable, owner: { column: "job_id" | "attachment_id"; id: number }, file: NewFile & { size: number; sha256: string }, now: number): Promise<StoredFile> {
  const { size, sha256 } = file;
  await c.query(`DELETE FROM files WHERE ${owner.column} = $1 AND name = $2`, [owner.id, file.name]);
  // Its bytes go in one statement, allowed the time its size needs (connect.ts longStatement).
  const r = await longStatement<FileRow>(c, fileWriteDeadlineMs(size), {
    text: `INSERT INTO files (${owner.column}, name, media_type, size, sha256, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${FILE_COLUMNS}`,
    values: [owner.id, file.name, file.mediaType, size, sha256, ts(now), file.bytes],
  });
  return toStoredFile(r.rows[0]!);
}

/** `target`: for the errors of a read's slices, which come after open() returned (and its guard). */
export function pgFiles(pool: pg.Pool, target: Target): FileStore {
  const describe = async (id: number): Promise<StoredFile | null> => {
    const row = (await pool.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE id = $1`, [id])).rows[0];
    return row ? toStoredFile(row) : null;
  };
  /** The bytes from `from` (0-based), at most `count`; throws if the file is gone. */
  const slice = async (file: StoredFile, from: number, count: number): Promise<Buffer> => {
    const r = await pool.query<{ chunk: Buffer }>(`SELECT substring(data FROM $2 FOR $3) AS chunk FROM files WHERE id = $1`, [file.id, from + 1, count]);
    const chunk = r.rows[0]?.chunk;
    if (!chunk) throw new StoreError("unavailable", `file ${file.id} (${file.name}) was deleted or replaced while it was read`);
    if (chunk.length !== Math.min(count, file.size - from)) throw new StoreError("corrupt", `file ${file.id} (${file.name}) gave ${chunk.length} bytes at ${from}; ${file.size} were recorded`);
    return chunk;
  };

  const readAll = async (id: number): Promise<{ file: StoredFile; bytes: Buffer } | null> => {
    const file = await describe(id);
    if (!file) return null;
    const bytes = Buffer.allocUnsafe(file.size);
    for (let from = 0; from < file.size; from += READ_SLICE_BYTES) (await slice(file, from, READ_SLICE_BYTES)).copy(bytes, from);
    return { file, bytes };
  };

  return {
    async putArtifact(at, given, now) {
      // Hashed before the transaction begins.
      const file = { ...given, ...digestOf(given.bytes) };
      return inTransaction(pool, async (c) => {
        // The fence. No row lock is needed to keep the job from being deleted (the foreign key
        // takes one as the file is inserted), and none is taken against the engine's own
        // writes to the row (progress, its end): a file put just before the attempt ended is
        // as good as one put a moment earlier.
        const live = await c.query(`SELECT 1 FROM jobs WHERE id = $1 AND status = 'running' AND attempts = $2`, [at.jobId, at.attempt]);
        if (live.rowCount === 0) return null;
        return writeFile(c, { column: "job_id", id: at.jobId }, file, now);
      });
    },
    async get(owner, name) {
      const o = ownerColumn(owner);
      const row = (await pool.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE ${o.column} = $1 AND name = $2`, [o.id, name])).rows[0];
      return row ? toStoredFile(row) : null;
    },
    async list(owner) {
      const o = ownerColumn(owner);
      return (await pool.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE ${o.column} = $1 ORDER BY name`, [o.id])).rows.map(toStoredFile);
    },
    async open(id) {
      const file = await describe(id);
      if (!file) return null;
      return {
        file,
        chunks: (async function* () {
          for (let from = 0; from < file.size; from += READ_SLICE_BYTES) {
            let chunk: Buffer;
            try {
              chunk = await slice(file, from, READ_SLICE_BYTES);
            } catch (err) {
              throw pgFailure(err, target);
            }
            yield chunk;
          }
        })(),
      };
    },
    readAll,
    async readUpload(attachmentId) {
      const o = (
        await pool.query<{ id: number; upload_name: string }>(
          `SELECT f.id, a.name AS upload_name FROM attachments a JOIN files f ON f.attachment_id = a.id AND f.name = $2 WHERE a.id = $1`,
          [attachmentId, UPLOAD_FILES.original],
        )
      ).rows[0];
      const whole = o ? await readAll(o.id) : null;
      return o && whole ? { uploadName: o.upload_name, ...whole } : null;
    },
  };
}

/** The files part for a worker (ctx.files): a small pool of the worker's own, opened on first use. */
export function openPostgresFilesPort(url: string): FileStore {
  const target = targetOf(url);
  let files: FileStore | null = null;
  const ctx: GuardContext = { target, closed: () => false };
  const port = (): FileStore =>
    (files ??= guarded(pgFiles(createPool(url, { durability: "full", max: 2, allowExitOnIdle: true }), target), ctx));
  return {
    putArtifact: (at, file, now) => port().putArtifact(at, file, now),
    get: (owner, name) => port().get(owner, name),
    list: (owner) => port().list(owner),
    open: (id) => port().open(id),
    readAll: (id) => port().readAll(id),
    readUpload: (id) => port().readUpload(id),
  };
}
