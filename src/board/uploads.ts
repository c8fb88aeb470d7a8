// Uploads: a file from the user's disk is copied into <home>/uploads (the kept copy) and
// <home>/uploads/tmp (the copy the thumbnail job reads), recorded as an attachment of a
// task, and a thumbnail job is queued. Each copy is written whole or not at all (see
// copyFileAtomic); if either cannot be written, neither is kept.

import { constants, rmSync, statSync, accessSync } from "node:fs";
import { basename, isAbsolute, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { invalid, notFound, TeamworkError } from "../lib/errors.js";
import { copyFileAtomic, isDiskFull } from "../lib/fs.js";
import type { Paths } from "../config/paths.js";
import type { Attachment, Job } from "../protocol/types.js";
import type { Store } from "../store/types.js";
import type { Engine } from "../queue/engine.js";

export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

/** A file name that cannot climb out of a folder or hide: letters, digits, . _ - only. */
export function safeName(name: string): string {
  const cleaned = basename(name).replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_").slice(-100);
  return cleaned || "file";
}

/**
 * Copies `source` to every target, or to none: a copy that fails removes those made before
 * it. A full disk is a 503 that says nothing was stored; other failures are thrown as they are.
 */
function storeCopies(source: string, targets: string[], name: string): void {
  const made: string[] = [];
  try {
    for (const target of targets) {
      copyFileAtomic(source, target, 0o644);
      made.push(target);
    }
  } catch (err) {
    for (const m of made) rmSync(m, { force: true });
    if (isDiskFull(err)) throw new TeamworkError("unavailable", `the disk is full: could not store ${name}; nothing was stored`, "free some space on the disk that holds teamwork's home, then upload again");
    throw err;
  }
}

export class Uploads {
  constructor(private readonly opts: { store: Store; engine: Engine; clock: Clock; log: Logger; paths: Paths }) {}

  /** Ties thumbnail outcomes back to their attachment and removes the temporary copy. */
  start(): void {
    this.opts.engine.onFinish("thumbnail", async (job) => {
      const uploadId = (job.payload as { uploadId?: unknown } | null)?.uploadId;
      if (typeof uploadId !== "number") return;
      const outcome = job.status === "complete" ? { path: String((job.result as { path?: unknown } | null)?.path ?? "") } : { error: job.error ?? job.status };
      const tmp = await this.opts.store.attachments.finishThumbnail(uploadId, outcome);
      if (tmp && tmp.startsWith(this.opts.paths.uploadsTmp)) rmSync(tmp, { force: true });
    });
  }

  async get(id: number): Promise<Attachment> {
    const a = await this.opts.store.attachments.get(id);
    if (!a) throw notFound(`upload ${id} not found`);
    return a;
  }

  forTask(taskId: number): Promise<Attachment[]> {
    return this.opts.store.attachments.listForTask(taskId);
  }

  async add(input: { path: string; taskId?: number }): Promise<{ upload: Attachment; job: Job | null }> {
    const { paths, store, engine, clock } = this.opts;
    if (!isAbsolute(input.path)) throw invalid(`path must be absolute, got "${input.path}"`);
    let st;
    try {
      st = statSync(input.path);
    } catch {
      throw notFound(`file not found: ${input.path}`);
    }
    if (st.isDirectory()) throw invalid(`${input.path} is a directory; upload a file`);
    if (!st.isFile()) throw invalid(`${input.path} is not a regular file`);
    try {
      accessSync(input.path, constants.R_OK);
    } catch {
      throw invalid(`${input.path} is not readable`);
    }
    if (st.size > MAX_UPLOAD_BYTES) throw invalid(`${input.path} is larger than ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB`);
    if (input.taskId !== undefined && !(await store.tasks.get(input.taskId))) throw notFound(`task ${input.taskId} not found`);

    const name = safeName(input.path);
    const stored = `${new Date(clock.now()).toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(4).toString("hex")}-${name}`;
    const path = join(paths.uploads, stored);
    const tmpPath = join(paths.uploadsTmp, stored);
    storeCopies(input.path, [path, tmpPath], name);
    let upload: Attachment;
    try {
      upload = await store.attachments.create({ taskId: input.taskId ?? null, name: basename(input.path), path, tmpPath, size: st.size }, clock.now());
    } catch (err) {
      // Not recorded (the database's disk may be full too): the copies would be orphans.
      for (const p of [path, tmpPath]) rmSync(p, { force: true });
      throw err;
    }
    if (!engine.registry.has("thumbnail")) return { upload, job: null };
    const { job } = await engine.enqueue({ type: "thumbnail", payload: { uploadId: upload.id, source: tmpPath } });
    await store.attachments.setThumbnailJob(upload.id, job.id);
    return { upload: (await store.attachments.get(upload.id))!, job };
  }
}
