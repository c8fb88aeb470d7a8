// What every store shares between its rows and the records it returns: rules about the data
// that do not depend on the database, written once.

import type { Attachment } from "../protocol/types.js";
import type { JobRecord, JobSummaryRecord, NewJob, ScheduleRun, TaskPatch } from "./types.js";

/** The fields a patch names: one given as undefined is left out like a missing one (a spread
 * of `{ title: undefined }` must not clear or fail the stored value). */
export function fieldsGiven(patch: TaskPatch): TaskPatch {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = v;
  return out as TaskPatch;
}

/** Where an attachment's thumbnail stands, from what its row records. */
export function thumbnailStatus(path: string | null, error: string | null): Attachment["thumbnail"]["status"] {
  return path ? "ready" : error ? "failed" : "pending";
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

/** An attachment's row, the same in every store (times as epoch ms). */
export interface AttachmentRow {
  id: number;
  task_id: number | null;
  name: string;
  path: string;
  tmp_path: string | null;
  size: number;
  thumbnail_path: string | null;
  thumbnail_error: string | null;
  thumbnail_job_id: number | null;
  created_at: number;
}

export const toAttachment = (r: AttachmentRow): Attachment => ({
  id: r.id,
  taskId: r.task_id,
  name: r.name,
  path: r.path,
  size: r.size,
  thumbnail: {
    status: thumbnailStatus(r.thumbnail_path, r.thumbnail_error),
    path: r.thumbnail_path,
    error: r.thumbnail_error,
    jobId: r.thumbnail_job_id,
  },
  createdAt: new Date(r.created_at).toISOString(),
});

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
