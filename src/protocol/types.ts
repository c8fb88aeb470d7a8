// Terminology
// - board: a named list of tasks; "default" always exists.
// - task: a unit of work on a board (todo → doing → done), optionally assigned and due.
// - task event: one durable line in the board's history (created, updated, completed,
//   assigned, deleted); the digest reads these.
// - job: one unit of background work of a job type, with a payload, stored durably.
// - job type: a name bound to a handler (built in, or loaded from a user's module).
// - attempt: one run of a job's handler; a failed attempt may be retried after a backoff.
// - slot: one of the worker pool's places; a running job occupies exactly one.
//
// All times on the wire are ISO 8601 strings in UTC; all ids are positive integers.

import type { Json } from "./validate.js";
import type { FileInfo } from "./files.js";

export type { Json };

export const TASK_STATUSES = ["todo", "doing", "done"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface Board {
  id: number;
  name: string;
  createdAt: string;
  taskCount: number;
}

export interface Task {
  id: number;
  title: string;
  description: string;
  board: string;
  status: TaskStatus;
  assignee: string | null;
  dueDate: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export const TASK_EVENT_TYPES = ["created", "updated", "completed", "assigned", "deleted"] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

export interface TaskEvent {
  id: number;
  taskId: number;
  board: string;
  type: TaskEventType;
  /** The task's title when the event happened (tasks can be deleted later). */
  title: string;
  data: { [key: string]: Json };
  createdAt: string;
}

export const JOB_STATUSES = ["pending", "running", "complete", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobAttemptError {
  attempt: number;
  message: string;
  permanent: boolean;
  at: string;
  /** True when the attempt killed its worker (counts towards quarantine). */
  crashed?: boolean;
}

/** What every view of a job carries: where it stands, without its payload and result. */
export interface JobHead {
  id: number;
  type: string;
  status: JobStatus;
  progress: number;
  progressMessage: string | null;
  attempts: number;
  maxAttempts: number;
  runAt: string;
  priority: number;
  uniqueKey: string | null;
  slot: number | null;
  /** The last attempt's error, if the job failed or is waiting to retry. */
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** One job, whole: `GET /jobs/:id`, enqueue and event replies. */
export interface Job extends JobHead {
  payload: Json;
  result: Json | null;
  /** Every failed attempt's error, oldest first. */
  errors: JobAttemptError[];
}

/** Characters of a payload, a result or an error that a job summary keeps. */
export const JOB_PREVIEW_CHARS = 200;

/**
 * One job in a list (`GET /jobs`): bounded in size whatever the job holds. Payload and result
 * are given as the start of their JSON text; `error` is cut to JOB_PREVIEW_CHARS, ending in
 * "…" when cut. The whole job is on `GET /jobs/:id`.
 */
export interface JobSummary extends JobHead {
  /** Size of the payload's JSON text, in bytes (UTF-8). */
  payloadBytes: number;
  /** The payload's JSON text, at most JOB_PREVIEW_CHARS characters. */
  payloadPreview: string;
  /** True when payloadPreview is not the whole payload (it is then not valid JSON). */
  payloadTruncated: boolean;
  /** As payloadBytes, for the result; null when there is none (not complete). */
  resultBytes: number | null;
  resultPreview: string | null;
  resultTruncated: boolean;
}

export interface Attachment {
  id: number;
  taskId: number | null;
  /** The file's original name. */
  name: string;
  /**
   * The bytes as kept in the store (any node can read them), or null for an upload made before
   * teamwork kept files in its database: that one's copy is the file at `path`.
   */
  file: FileInfo | null;
  /** Only for an upload made before files were kept in the store: where its copy is, on the host of the daemon that took it. */
  path: string | null;
  size: number;
  thumbnail: {
    status: "pending" | "ready" | "failed";
    /** The thumbnail as kept in the store (a copy of its job's artifact, so it outlives the job). */
    file: FileInfo | null;
    /** Only for a thumbnail made before files were kept in the store: where it is, on the host that made it. */
    path: string | null;
    error: string | null;
    jobId: number | null;
  };
  createdAt: string;
}

export interface Schedule {
  name: string;
  cron: string;
  /** IANA time zone, or null for the daemon's local time. */
  timezone: string | null;
  type: string;
  payload: Json;
  enabled: boolean;
  /** When the last slot was handled, and how: enqueued a job, or skipped (previous run still live). */
  lastRunAt: string | null;
  lastOutcome: "enqueued" | "skipped" | null;
  /** The job of the last firing and where it stands now (null once pruned). */
  lastJob: { id: number; status: JobStatus; error: string | null } | null;
  nextRunAt: string | null;
}

export interface CleanupStats {
  folder: string;
  maxAgeMs: number;
  lastRun: { at: string; jobId: number; files: number; bytes: number } | null;
  total: { runs: number; files: number; bytes: number };
  schedule: { cron: string; enabled: boolean; nextRunAt: string | null } | null;
}

export interface DigestPreview {
  subject: string;
  text: string;
  empty: boolean;
  /** Would `digest send` send it? (false when empty and digest.sendEmpty is off, or no recipients) */
  wouldSend: boolean;
  recipients: string[];
  since: string | null;
  afterEventId: number;
  toEventId: number;
  counts: Record<"created" | "completed" | "assigned" | "deleted", number>;
  boards: { board: string; counts: Record<"created" | "completed" | "assigned" | "deleted", number>; items: Record<"created" | "completed" | "assigned" | "deleted", { taskId: number; title: string; assignee?: string }[]> }[];
}

export const WHY_CODES = ["running", "waiting_for_slot", "backing_off", "scheduled", "queue_paused", "type_paused", "starting", "complete", "failed", "quarantined", "cancelled"] as const;
export type WhyCode = (typeof WHY_CODES)[number];

export interface JobWhy {
  jobId: number;
  code: WhyCode;
  /** One line for people. */
  message: string;
  /** For waiting_for_slot: due jobs that will start first. */
  ahead?: number;
  /** For backing_off and scheduled: when it becomes due. */
  until?: string;
}

export interface JobLogLine {
  id: number;
  jobId: number;
  attempt: number;
  at: string;
  message: string;
}

export interface TypeStats {
  type: string;
  finished: number;
  complete: number;
  failed: number;
  cancelled: number;
  /** Attempts beyond the first, summed over the finished jobs. */
  retried: number;
  /** Run time of completed jobs' last attempt (finished − started), ms. */
  runMs: { mean: number | null; p95: number | null };
  /** From due (runAt) to started, ms. */
  startLatencyMs: { p50: number | null; p95: number | null; p99: number | null };
}

export interface Stats {
  since: string;
  types: TypeStats[];
  queue: { pending: number; due: number; running: number; concurrency: number; paused: { all: boolean; types: string[] } };
}

export interface QueueState {
  concurrency: number;
  running: number;
  paused: { all: boolean; types: string[] };
}

export interface Health {
  ok: true;
  version: string;
  pid: number;
}

/** A daemon serving the store, as `teamwork nodes` shows it (on SQLite: the one daemon of the home). */
export interface NodeInfo {
  /** The node's id: the owner its claims record (a daemon that fenced itself has a new one). */
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  /** How long ago its last heartbeat was, on the store's clock. */
  heartbeatAgeMs: number;
  leaseUntil: string;
  /** Stopping gracefully: it claims nothing more. */
  stopping: boolean;
  /** Jobs running for it now. */
  running: number;
  /** The daemon that answered. */
  self: boolean;
}

/**
 * A cancel of a job running on another daemon (node): asked for here, carried out there
 * (jobsCancel's `runsOn`). host and pid are null when that node is no longer listed.
 */
export interface CancelElsewhere {
  node: string;
  host: string | null;
  pid: number | null;
  /** When that node must have stopped it (its worker is terminated then), on the store's clock. */
  deadline: string;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  startedAt: string;
  uptimeMs: number;
  home: string;
  socket: string;
  /** Where the data is: the SQLite file, or postgres://user@host:port/database (never a password). */
  database: string;
  /** Which store: "sqlite" (embedded, this host) or "postgres" (shared by a team). */
  store?: "sqlite" | "postgres";
  /** This daemon run's id: the owner its claims record (a node, on a shared database). */
  node?: string;
  logFile: string;
  concurrency: number;
  durability: "full" | "process";
  paused: { all: boolean; types: string[] };
  /** Job types that run in a worker process, how its memory cap is enforced, and what ends it if the daemon dies. */
  isolation: { processTypes: string[]; memoryCap: string; orphanGuard: string };
  counts: {
    boards: number;
    tasks: number;
    jobs: Record<JobStatus, number>;
  };
  /**
   * The daemon's limit of open files (null: unlimited or unknown): the soft limit is raised to
   * the hard one at start where prlimit is available; `note` says why it was not.
   */
  openFiles?: { soft: number | null; hard: number | null; softAtStart: number | null; note: string | null; summary: string };
}
