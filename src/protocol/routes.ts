// Every route of the socket API: its method, path, input validator and output type.
// The daemon dispatches on these names (daemon/server.ts) and the client calls them by
// name (client/client.ts); neither knows the other exists.
//
// A route's input is one object made of its path parameters, its query string (GET,
// DELETE) or its JSON body (POST, PATCH). Path and query values arrive as text.

import * as v from "./validate.js";
import { JOB_STATUSES, TASK_STATUSES } from "./types.js";
import { ARTIFACT_NAME, ARTIFACT_NAME_HINT, UPLOAD_FILES, type FileInfo } from "./files.js";
import type { Attachment, Board, CancelElsewhere, CleanupStats, DaemonStatus, DigestPreview, Health, Job, JobLogLine, JobSummary, JobWhy, NodeInfo, QueueState, Schedule, Stats, Task, TaskEvent } from "./types.js";

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

/**
 * Most jobs one `GET /jobs` answers with (page on with beforeId). With summaries bounded by
 * JOB_PREVIEW_CHARS, a page stays around a megabyte whatever the jobs hold.
 */
export const MAX_LIST_LIMIT = 1000;

/**
 * Largest result a handler may return, as JSON text (UTF-8 bytes). It is measured in the
 * worker, so a bigger one never reaches the daemon's thread nor the database.
 */
export const MAX_RESULT_BYTES = 1024 * 1024;

const mib = (bytes: number) => `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;

/** The error of an attempt whose result is over MAX_RESULT_BYTES (it fails permanently). */
export function resultTooLarge(bytes: number): string {
  return `the job's result is ${(bytes / (1024 * 1024)).toFixed(1)} MiB; the limit is ${mib(MAX_RESULT_BYTES)}: store big outputs as artifacts (ctx.files.putArtifact) and return their names`;
}

const id = v.intText({ min: 1 });
const title = v.string({ min: 1, max: 500, trim: true });
const boardName = v.string({
  min: 1,
  max: 64,
  trim: true,
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
  patternHint: "a board name uses letters, digits, '.', '_' and '-' and starts with a letter or digit",
});
const description = v.string({ max: 20_000 });
const jobType = v.string({ min: 1, max: 100, pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]*$/, patternHint: "a job type uses letters, digits, '.', '_', ':' and '-'" });
const duration = v.string({ min: 1, max: 40 });
const artifactName = v.string({ min: 1, max: 200, pattern: ARTIFACT_NAME, patternHint: ARTIFACT_NAME_HINT });
const scheduleName = v.string({ min: 1, max: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/, patternHint: "a schedule name uses letters, digits, '.', '_' and '-'" });

const jobSpec = v.object({
  type: jobType,
  payload: v.optional(v.json({ maxBytes: 512 * 1024 })),
  uniqueKey: v.optional(v.string({ min: 1, max: 200 })),
  /** Absolute start time (ISO 8601). */
  runAt: v.optional(v.instant()),
  /** Or a delay from now, in milliseconds (up to a year). */
  delayMs: v.optional(v.int({ min: 0, max: 366 * 86_400_000 })),
  priority: v.optional(v.int({ min: -1000, max: 1000 })),
  maxAttempts: v.optional(v.int({ min: 1, max: 100 })),
});
export type JobSpec = v.Infer<typeof jobSpec>;

export const routes = {
  health: { method: "GET", path: "/health", input: v.object({}) },
  daemonStatus: { method: "GET", path: "/daemon/status", input: v.object({}) },
  daemonStop: { method: "POST", path: "/daemon/stop", input: v.object({}) },
  /** The daemons serving the store (nodes), oldest first. */
  nodesList: { method: "GET", path: "/nodes", input: v.object({}) },

  boardsList: { method: "GET", path: "/boards", input: v.object({}) },
  boardsAdd: { method: "POST", path: "/boards", input: v.object({ name: boardName }) },

  tasksList: {
    method: "GET",
    path: "/tasks",
    input: v.object({
      board: v.optional(boardName),
      status: v.optional(v.oneOf(TASK_STATUSES)),
      assignee: v.optional(v.email()),
      limit: v.optional(v.intText({ min: 1, max: 100_000 })),
    }),
  },
  tasksAdd: {
    method: "POST",
    path: "/tasks",
    input: v.object({
      title,
      board: v.optional(boardName),
      description: v.optional(description),
      assignee: v.optional(v.nullable(v.email())),
      dueDate: v.optional(v.nullable(v.date())),
      status: v.optional(v.oneOf(TASK_STATUSES)),
    }),
  },
  tasksGet: { method: "GET", path: "/tasks/:id", input: v.object({ id }) },
  tasksEdit: {
    method: "PATCH",
    path: "/tasks/:id",
    input: v.object({
      id,
      title: v.optional(title),
      board: v.optional(boardName),
      description: v.optional(description),
      assignee: v.optional(v.nullable(v.email())),
      dueDate: v.optional(v.nullable(v.date())),
      status: v.optional(v.oneOf(TASK_STATUSES)),
    }),
  },
  tasksDone: { method: "POST", path: "/tasks/:id/done", input: v.object({ id }) },
  tasksAssign: { method: "POST", path: "/tasks/:id/assign", input: v.object({ id, assignee: v.email() }) },
  tasksRemove: { method: "DELETE", path: "/tasks/:id", input: v.object({ id }) },
  taskEventsList: {
    method: "GET",
    path: "/task-events",
    input: v.object({
      taskId: v.optional(id),
      board: v.optional(boardName),
      afterId: v.optional(v.intText({ min: 0 })),
      limit: v.optional(v.intText({ min: 1, max: 10_000 })),
    }),
  },

  jobsEnqueue: { method: "POST", path: "/jobs", input: jobSpec },
  jobsEnqueueBatch: { method: "POST", path: "/jobs/batch", input: v.object({ jobs: v.array(jobSpec, { min: 1, max: 10_000 }) }) },
  /** As jobsEnqueueBatch, answered with the ids only: for producers that enqueue in bulk. */
  jobsEnqueueBatchIds: { method: "POST", path: "/jobs/batch/ids", input: v.object({ jobs: v.array(jobSpec, { min: 1, max: 10_000 }) }) },
  jobsList: {
    method: "GET",
    path: "/jobs",
    input: v.object({
      status: v.optional(v.oneOf(JOB_STATUSES)),
      type: v.optional(jobType),
      limit: v.optional(v.intText({ min: 1, max: MAX_LIST_LIMIT })),
      /** Paging: only jobs with a smaller id (lists are newest first). */
      beforeId: v.optional(v.intText({ min: 1 })),
    }),
  },
  jobsGet: { method: "GET", path: "/jobs/:id", input: v.object({ id }) },
  /**
   * wait (default true): answer once the job has stopped (a running job gets its cancel grace,
   * then its worker is terminated), as cancelled; false: answer once the cancel is recorded.
   */
  jobsCancel: { method: "POST", path: "/jobs/:id/cancel", input: v.object({ id, wait: v.optional(v.boolean()) }) },
  jobsRetry: { method: "POST", path: "/jobs/:id/retry", input: v.object({ id }) },
  jobsPrune: { method: "POST", path: "/jobs/prune", input: v.object({ olderThan: v.optional(duration) }) },
  jobsWhy: { method: "GET", path: "/jobs/:id/why", input: v.object({ id }) },
  jobsLogs: { method: "GET", path: "/jobs/:id/logs", input: v.object({ id, afterId: v.optional(v.intText({ min: 0 })) }) },
  queueGet: { method: "GET", path: "/queue", input: v.object({}) },
  stats: { method: "GET", path: "/stats", input: v.object({ since: v.optional(duration) }) },
  /** Prometheus text exposition format (text/plain), not JSON. */
  metrics: { method: "GET", path: "/metrics", input: v.object({}) },
  queuePause: { method: "POST", path: "/queue/pause", input: v.object({ type: v.optional(jobType) }) },
  queueResume: { method: "POST", path: "/queue/resume", input: v.object({ type: v.optional(jobType) }) },
  queueConcurrency: { method: "POST", path: "/queue/concurrency", input: v.object({ concurrency: v.int({ min: 1, max: 64 }) }) },
  uploadsAdd: {
    method: "POST",
    path: "/uploads",
    input: v.object({ path: v.string({ min: 1, max: 4096 }), taskId: v.optional(v.int({ min: 1 })) }),
  },
  uploadsGet: { method: "GET", path: "/uploads/:id", input: v.object({ id }) },
  schedulesList: { method: "GET", path: "/schedules", input: v.object({}) },
  schedulesSet: {
    method: "POST",
    path: "/schedules",
    input: v.object({
      name: scheduleName,
      cron: v.string({ min: 1, max: 200 }),
      timezone: v.optional(v.nullable(v.string({ min: 1, max: 64 }))),
      type: v.optional(jobType),
      payload: v.optional(v.json({ maxBytes: 64 * 1024 })),
    }),
  },
  schedulesPause: { method: "POST", path: "/schedules/:name/pause", input: v.object({ name: scheduleName }) },
  schedulesResume: { method: "POST", path: "/schedules/:name/resume", input: v.object({ name: scheduleName }) },
  schedulesRun: { method: "POST", path: "/schedules/:name/run", input: v.object({ name: scheduleName }) },
  schedulesRemove: { method: "DELETE", path: "/schedules/:name", input: v.object({ name: scheduleName }) },
  cleanupStats: { method: "GET", path: "/cleanup/stats", input: v.object({}) },
  digestPreview: { method: "GET", path: "/digest/preview", input: v.object({}) },
  /** SSE: events of one job; the first event is its current status. */
  jobsStream: { method: "GET", path: "/jobs/:id/events", input: v.object({ id }) },
  /** SSE: events of every job. */
  eventsStream: { method: "GET", path: "/events", input: v.object({}) },

  // Files kept in the store (protocol/files.ts).
  /** The artifacts of a job: their descriptions, not their bytes. */
  jobsArtifacts: { method: "GET", path: "/jobs/:id/artifacts", input: v.object({ id }) },
  /** Bytes: one artifact of a job, streamed, with its media type, length and SHA-256 (x-teamwork-sha256). */
  jobsArtifact: { method: "GET", path: "/jobs/:id/artifacts/:name", input: v.object({ id, name: artifactName }) },
  /** Bytes: a file of an upload (its "original", or its "thumbnail"), as jobsArtifact. */
  uploadsFile: { method: "GET", path: "/uploads/:id/files/:name", input: v.object({ id, name: v.oneOf([UPLOAD_FILES.original, UPLOAD_FILES.thumbnail]) }) },
} as const;

export type RouteName = keyof typeof routes;
export type RouteInput<K extends RouteName> = v.Infer<(typeof routes)[K]["input"]>;

/** What each route answers with (SSE routes answer with a stream, typed in events.ts). */
export interface RouteOutput {
  health: Health;
  daemonStatus: DaemonStatus;
  daemonStop: { stopping: true };
  nodesList: { nodes: NodeInfo[] };
  boardsList: { boards: Board[] };
  boardsAdd: { board: Board };
  tasksList: { tasks: Task[] };
  tasksAdd: { task: Task };
  tasksGet: { task: Task; attachments: Attachment[] };
  tasksEdit: { task: Task };
  tasksDone: { task: Task };
  tasksAssign: { task: Task; job: Job | null };
  tasksRemove: { task: Task };
  taskEventsList: { events: TaskEvent[] };
  jobsEnqueue: { job: Job; created: boolean };
  jobsEnqueueBatch: { jobs: { job: Job; created: boolean }[] };
  /** ids: in input order (a spec whose uniqueKey was live gets that job's id); created: how many are new. */
  jobsEnqueueBatchIds: { ids: number[]; created: number };
  jobsList: { jobs: JobSummary[] };
  jobsGet: { job: Job };
  /** runsOn: the job was running on another daemon (node), which stops it; absent otherwise. */
  jobsCancel: { job: Job; runsOn?: CancelElsewhere };
  jobsRetry: { job: Job };
  jobsPrune: { pruned: number };
  jobsWhy: JobWhy;
  jobsLogs: { logs: JobLogLine[] };
  queueGet: QueueState;
  stats: Stats;
  metrics: string;
  queuePause: QueueState;
  queueResume: QueueState;
  queueConcurrency: QueueState;
  uploadsAdd: { upload: Attachment; job: Job | null };
  uploadsGet: { upload: Attachment };
  schedulesList: { schedules: Schedule[] };
  schedulesSet: { schedule: Schedule };
  schedulesPause: { schedule: Schedule };
  schedulesResume: { schedule: Schedule };
  schedulesRun: { outcome: "enqueued" | "skipped"; job: Job };
  schedulesRemove: { schedule: Schedule };
  cleanupStats: CleanupStats;
  digestPreview: DigestPreview;
  jobsStream: never;
  eventsStream: never;
  jobsArtifacts: { artifacts: FileInfo[] };
  jobsArtifact: never;
  uploadsFile: never;
}

export const SSE_ROUTES = new Set<RouteName>(["jobsStream", "eventsStream"]);

/** Routes that answer with a file's bytes (not JSON): served over HTTP only, never over RPC. */
export const BYTE_ROUTES = new Set<RouteName>(["jobsArtifact", "uploadsFile"]);
/** The header a byte route's answer carries the SHA-256 (hex) of its bytes in. */
export const SHA256_HEADER = "x-teamwork-sha256";

/** Largest request body the daemon reads; larger ones get 413 without being buffered. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Fills a route's path template with the input's path parameters; the rest is returned. */
export function buildPath(path: string, input: Record<string, unknown>): { path: string; rest: Record<string, unknown> } {
  const rest = { ...input };
  const filled = path.replace(/:(\w+)/g, (_, name: string) => {
    const value = rest[name];
    delete rest[name];
    return encodeURIComponent(String(value));
  });
  return { path: filled, rest };
}
