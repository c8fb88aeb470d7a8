// What every store shares between its rows and the records it returns: rules about the data
// that do not depend on the database, written once.

import { createHash } from "node:crypto";
import type { Attachment } from "../protocol/types.js";
import { UPLOAD_FILES, type FileInfo } from "../protocol/files.js";
import type { FileOwner, JobRecord, JobSummaryRecord, NewJob, ScheduleRun, StoredFile, TaskPatch } from "./types.js";

/** The fields a patch names: one given as undefined is left out like a missing one (a spread
 * of `{ title: undefined }` must not clear or fail the stored value). */
export function fieldsGiven(patch: TaskPatch): TaskPatch {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = v;
  return out as TaskPatch;
}

/** Where an attachment's thumbnail stands, from what its row records. */
export function thumbnailStatus(made: boolean, error: string | null): Attachment["thumbnail"]["status"] {
  return made ? "ready" : error ? "failed" : "pending";
}

/** A job's summary row as both stores select it (SUMMARY_COLUMNS in each): sizes and the start of payload and result. */
export interface JobSummaryRow {
  id: JobSummaryRecord["id"];
  type: JobSummaryRecord["type"];
  status: JobSummaryRecord["status"];
  progress: JobSummaryRecord["progress"];
  progress_message: JobSummaryRecord["progressMessage"];
  attempts: JobSummaryRecord["attempts"];
  max_attempts: JobSummaryRecord["maxAttempts"];
  run_at: JobSummaryRecord["runAt"];
  priority: JobSummaryRecord["priority"];
  unique_key: JobSummaryRecord["uniqueKey"];
  slot: JobSummaryRecord["slot"];
  error: JobSummaryRecord["error"];
  created_at: JobSummaryRecord["createdAt"];
  started_at: JobSummaryRecord["startedAt"];
  finished_at: JobSummaryRecord["finishedAt"];
  payload_bytes: number;
  payload_preview: string;
  result_bytes: number | null;
  result_preview: string | null;
}

/** The summary a list returns; a preview shorter (in bytes) than its value is marked truncated. */
export const toJobSummary = (r: JobSummaryRow): JobSummaryRecord => ({
  id: r.id,
  type: r.type,
  status: r.status,
  progress: r.progress,
  progressMessage: r.progress_message,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  priority: r.priority,
  uniqueKey: r.unique_key,
  slot: r.slot,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  payloadBytes: r.payload_bytes,
  payloadPreview: r.payload_preview,
  payloadTruncated: Buffer.byteLength(r.payload_preview) < r.payload_bytes,
  resultBytes: r.result_bytes,
  resultPreview: r.result_preview,
  resultTruncated: r.result_preview !== null && Buffer.byteLength(r.result_preview) < r.result_bytes!,
});

/**
 * An attachment's row as both stores select it (ATTACHMENT_SELECT): the attachments row, and
 * the description of its files "original" and "thumbnail" (null where there is none). Times
 * as epoch ms.
 */
export interface AttachmentRow {
  id: number;
  task_id: number | null;
  name: string;
  path: string | null;
  tmp_path: string | null;
  size: number;
  thumbnail_path: string | null;
  thumbnail_error: string | null;
  thumbnail_job_id: number | null;
  created_at: number;
  original_media_type: string | null;
  original_size: number | null;
  original_sha256: string | null;
  original_created_at: number | null;
  thumb_media_type: string | null;
  thumb_size: number | null;
  thumb_sha256: string | null;
  thumb_created_at: number | null;
}

/**
 * The select both stores read an attachment with ("a" is the attachments row): each of its
 * files joined by its name, the bytes left out.
 */
export const ATTACHMENT_SELECT = `SELECT a.*,
    o.media_type AS original_media_type, o.size AS original_size, o.sha256 AS original_sha256, o.created_at AS original_created_at,
    t.media_type AS thumb_media_type, t.size AS thumb_size, t.sha256 AS thumb_sha256, t.created_at AS thumb_created_at
  FROM attachments a
  LEFT JOIN files o ON o.attachment_id = a.id AND o.name = '${UPLOAD_FILES.original}'
  LEFT JOIN files t ON t.attachment_id = a.id AND t.name = '${UPLOAD_FILES.thumbnail}'`;

const fileInfo = (name: string, mediaType: string | null, size: number | null, sha256: string | null, createdAt: number | null): FileInfo | null =>
  mediaType === null ? null : { name, mediaType, size: size!, sha256: sha256!, createdAt: new Date(createdAt!).toISOString() };

export const toAttachment = (r: AttachmentRow): Attachment => {
  const thumb = fileInfo(UPLOAD_FILES.thumbnail, r.thumb_media_type, r.thumb_size, r.thumb_sha256, r.thumb_created_at);
  return {
    id: r.id,
    taskId: r.task_id,
    name: r.name,
    file: fileInfo(UPLOAD_FILES.original, r.original_media_type, r.original_size, r.original_sha256, r.original_created_at),
    path: r.path,
    size: r.size,
    thumbnail: {
      status: thumbnailStatus(thumb !== null || r.thumbnail_path !== null, r.thumbnail_error),
      file: thumb,
      path: r.thumbnail_path,
      error: r.thumbnail_error,
      jobId: r.thumbnail_job_id,
    },
    createdAt: new Date(r.created_at).toISOString(),
  };
};

/** A file's row without its bytes (FILE_COLUMNS), the same in every store. */
export interface FileRow {
  id: number;
  name: string;
  media_type: string;
  size: number;
  sha256: string;
  created_at: number;
}

/** The columns of a file's description, in both stores (never the bytes). */
export const FILE_COLUMNS = "id, name, media_type, size, sha256, created_at";

export const toStoredFile = (r: FileRow): StoredFile => ({ id: r.id, name: r.name, mediaType: r.media_type, size: r.size, sha256: r.sha256, createdAt: r.created_at });

/** What a store records of a file's bytes besides them: their size and SHA-256 (hex). */
export const digestOf = (bytes: Buffer): { size: number; sha256: string } => ({ size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });

/** The owner's column and id, for a query on files. */
export const ownerColumn = (owner: FileOwner): { column: "job_id" | "attachment_id"; id: number } =>
  "jobId" in owner ? { column: "job_id", id: owner.jobId } : { column: "attachment_id", id: owner.attachmentId };

/** A row of schedule_runs, the same in every store. */
export interface ScheduleRunRow {
  schedule: string;
  slot: number;
  fired_at: number;
  outcome: "enqueued" | "skipped";
  job_id: number;
}

export const toScheduleRun = (r: ScheduleRunRow): ScheduleRun => ({ schedule: r.schedule, slot: r.slot, firedAt: r.fired_at, outcome: r.outcome, jobId: r.job_id });

/** The record of a job just inserted, as the insert and the column defaults make it in every store. */
export function newJobRecord(id: number, job: NewJob, now: number): JobRecord {
  return {
    id,
    type: job.type,
    payload: job.payload,
    status: "pending",
    progress: 0,
    progressMessage: null,
    attempts: 0,
    maxAttempts: job.maxAttempts,
    runAt: job.runAt,
    priority: job.priority,
    uniqueKey: job.uniqueKey,
    slot: null,
    result: null,
    error: null,
    errors: [],
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    state: null,
  };
}
