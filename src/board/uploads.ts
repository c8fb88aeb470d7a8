// Uploads: a file from the user's disk (the CLI runs on the daemon's host, and names the
// file by path) is read by the daemon and kept in the store with its attachment, in one
// transaction (AttachmentStore.create): both or neither. Then a thumbnail job is queued for
// {uploadId}: whichever node of a team claims it reads the bytes from the store. When it
// completes, its artifact is copied to the attachment's thumbnail (finishThumbnail), which so
// outlives the job. Nothing is written under the home.
//
// Uploads made before files were kept in the store have a copy under <home>/uploads (path)
// and a temporary one in uploads/tmp for their thumbnail job; that one is still removed when
// its job ends, on the host that has it.

import { constants, rmSync, statSync, accessSync, readFileSync } from "node:fs";
import { basename, isAbsolute } from "node:path";
import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { invalid, notFound } from "../lib/errors.js";
import type { Paths } from "../config/paths.js";
import type { Attachment, Job } from "../protocol/types.js";
import { fileTooLarge, mediaTypeOf } from "../protocol/files.js";
import type { Store } from "../store/types.js";
import type { Engine } from "../queue/engine.js";

/** A file name that cannot climb out of a folder or hide: letters, digits, . _ - only. */
export function safeName(name: string): string {
  const cleaned = basename(name).replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_").slice(-100);
  return cleaned || "file";
}

export class Uploads {
  constructor(private readonly opts: { store: Store; engine: Engine; clock: Clock; log: Logger; paths: Paths; fileMaxBytes: number }) {}

  /** Ties thumbnail outcomes back to their attachment (the artifact becomes its thumbnail), and removes an old upload's temporary copy. */
  start(): void {
    this.opts.engine.onFinish("thumbnail", async (job) => {
      const uploadId = (job.payload as { uploadId?: unknown } | null)?.uploadId;
      if (typeof uploadId !== "number") return;
      const artifact = (job.result as { artifact?: unknown } | null)?.artifact;
      const outcome =
        job.status !== "complete" ? { error: job.error ?? job.status } : typeof artifact === "string" ? { jobId: job.id, artifact } : { error: "the thumbnail job completed without an artifact" };
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
    const { store, engine, clock } = this.opts;
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
    const tooLarge = fileTooLarge(input.path, st.size, this.opts.fileMaxBytes);
    if (tooLarge) throw invalid(tooLarge, "raise fileMaxBytes in the configuration (docs/operations.md, \"Files\"), or upload a smaller file");
    if (input.taskId !== undefined && !(await store.tasks.get(input.taskId))) throw notFound(`task ${input.taskId} not found`);

    const name = basename(input.path);
    let bytes: Buffer;
    try {
      bytes = readFileSync(input.path);
    } catch (err) {
      throw invalid(`${input.path} could not be read: ${(err as Error).message}`);
    }
    // It may have grown since it was measured.
    const grown = fileTooLarge(input.path, bytes.length, this.opts.fileMaxBytes);
    if (grown) throw invalid(grown);
    const upload = await store.attachments.create({ taskId: input.taskId ?? null, name, file: { name, mediaType: mediaTypeOf(name), bytes } }, clock.now());
    if (!engine.registry.has("thumbnail")) return { upload, job: null };
    const { job } = await engine.enqueue({ type: "thumbnail", payload: { uploadId: upload.id } });
    await store.attachments.setThumbnailJob(upload.id, job.id);
    return { upload: (await store.attachments.get(upload.id))!, job };
  }
}
