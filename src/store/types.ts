// The Store: everything the daemon keeps, behind one narrow interface. The SQLite
// implementation (store/sqlite/) is the default; a PostgreSQL one can sit behind the same
// interface. No connection or transaction type leaks out: each method is one atomic unit.
//
// Times are epoch milliseconds here; the wire format (ISO strings) is made at the edge.

import type { Attachment, Board, Json, JobStatus, Task, TaskEvent, TaskStatus } from "../protocol/types.js";

export interface NewTask {
  title: string;
  board: string;
  description: string;
  assignee: string | null;
  dueDate: string | null;
  status: TaskStatus;
}

export type TaskPatch = Partial<NewTask>;

export interface TaskFilter {
  board?: string;
  status?: TaskStatus;
  assignee?: string;
  limit?: number;
}

export interface TaskEventFilter {
  taskId?: number;
  board?: string;
  afterId?: number;
  limit?: number;
}

export interface BoardStore {
  list(): Promise<Board[]>;
  get(name: string): Promise<Board | null>;
  /** Throws conflict if the name is taken. */
  create(name: string, now: number): Promise<Board>;
}

export interface TaskStore {
  list(filter: TaskFilter): Promise<Task[]>;
  get(id: number): Promise<Task | null>;
  /** Creates the task and its "created" (and "assigned") events together. Throws not_found for an unknown board. */
  create(task: NewTask, now: number): Promise<Task>;
  /** Applies the patch and appends the events it implies, together. Null if there is no such task. */
  update(id: number, patch: TaskPatch, now: number): Promise<Task | null>;
  /** Deletes the task and appends a "deleted" event, together. Null if there is no such task. */
  remove(id: number, now: number): Promise<Task | null>;
  count(): Promise<number>;
}

export interface TaskEventStore {
  list(filter: TaskEventFilter): Promise<TaskEvent[]>;
}

export interface JobRecord {
  id: number;
  type: string;
  payload: Json;
  status: JobStatus;
  progress: number;
  progressMessage: string | null;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  priority: number;
  uniqueKey: string | null;
  slot: number | null;
  result: Json | null;
  error: string | null;
  errors: { attempt: number; message: string; permanent: boolean; at: number; crashed?: boolean }[];
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The handler's last checkpoint (kept across attempts), or null. */
  state: Json | null;
}

export interface NewJob {
  type: string;
  payload: Json;
  runAt: number;
  priority: number;
  maxAttempts: number;
  uniqueKey: string | null;
}

/** How one attempt of a running job ended. Applied only if that attempt is still the job's current one. */
export type Finish = (
  /**
   * running: the attempt as the engine knows it (the claimed record with its latest progress
   * message and checkpoint); when given, the stored job is built from it instead of read back.
   */
  | { id: number; attempt: number; outcome: "complete"; result: Json; running?: JobRecord }
  | { id: number; attempt: number; outcome: "retry"; error: string; runAt: number; crashed?: boolean }
  | { id: number; attempt: number; outcome: "failed"; error: string; permanent: boolean; crashed?: boolean }
  | { id: number; attempt: number; outcome: "cancelled"; error?: string }
  /** Put back to pending without counting the attempt (graceful shutdown, or it never began). */
  | { id: number; attempt: number; outcome: "requeue" }
) & {
  /** When its turn began, for a job claimed ahead of its turn (stored with started_at null). */
  startedAt?: number;
};

/** Everything the engine writes in one turn, committed as one transaction (group commit). */
export interface TickBatch {
  now: number;
  inserts: NewJob[];
  finishes: Finish[];
  progress: { id: number; attempt: number; progress: number; message: string | null }[];
  /** Checkpoints of running attempts (fenced like finishes). */
  checkpoints: { id: number; attempt: number; state: Json }[];
  /** Log lines of running attempts. */
  logs: { id: number; attempt: number; at: number; message: string }[];
  /** Jobs claimed ahead of their turn whose turn has begun (started_at was null). */
  begins: { id: number; attempt: number; at: number }[];
  /**
   * Claim due pending jobs in order (priority, runAt, id), at most `limit`: assign names the
   * slot of each, from its type, and whether it waits there behind other jobs (ahead: its
   * started_at stays null until its turn begins); null stops the claim there (so no job
   * overtakes one that could not be placed). Called inside the transaction; absent: claim nothing.
   */
  claim: { limit: number; assign(type: string): { slot: number; ahead: boolean } | null } | null;
  /** Job types that must not be claimed (paused). */
  excludeTypes: string[];
}

export interface TickResult {
  /** One per insert, in order: the stored job, and false where a live job with the same unique key was returned instead. */
  inserted: { job: JobRecord; created: boolean }[];
  /** The finished jobs as stored (fenced finishes that no longer applied are left out). */
  finished: JobRecord[];
  claimed: JobRecord[];
  /** When the claim ran out of due jobs (not of room): the earliest runAt among pending jobs left (null if none). */
  nextDueAt: number | null;
}

export interface JobFilter {
  status?: JobStatus;
  type?: string;
  limit?: number;
  beforeId?: number;
}

export interface JobStore {
  tick(batch: TickBatch): Promise<TickResult>;
  get(id: number): Promise<JobRecord | null>;
  list(filter: JobFilter): Promise<JobRecord[]>;
  counts(): Promise<Record<JobStatus, number>>;
  /** Pending → cancelled. Null if the job was not pending. */
  cancelPending(id: number, now: number): Promise<JobRecord | null>;
  /** Failed or cancelled → pending, due now, with a fresh set of attempts. Null if the job was in another state. */
  retry(id: number, now: number): Promise<JobRecord | null>;
  /** Deletes finished jobs that finished before the cutoff; returns how many. */
  prune(finishedBefore: number): Promise<number>;
  logs(id: number, afterId: number): Promise<import("../protocol/types.js").JobLogLine[]>;
  /** Per type, over jobs finished at or after `since`, and the queue now. */
  stats(since: number, now: number): Promise<{ types: import("../protocol/types.js").TypeStats[]; pending: number; due: number; running: number }>;
  /** For `jobs why`: due pending jobs that would be claimed before this one (paused types left out). */
  countAhead(job: JobRecord, now: number, excludeTypes: string[]): Promise<number>;
  /**
   * Boot: jobs a daemon that died left running go back to pending, each with its attempt
   * counted and an "interrupted" error, those handed over ahead of their turn too (they may
   * have begun). Returns how many.
   */
  rescue(now: number): Promise<{ interrupted: number }>;
}

export interface AttachmentStore {
  create(a: { taskId: number | null; name: string; path: string; tmpPath: string; size: number }, now: number): Promise<Attachment>;
  get(id: number): Promise<Attachment | null>;
  listForTask(taskId: number): Promise<Attachment[]>;
  setThumbnailJob(id: number, jobId: number): Promise<void>;
  /** Records the thumbnail job's outcome; returns the temporary copy's path (now to delete), if any. */
  finishThumbnail(id: number, outcome: { path: string } | { error: string }): Promise<string | null>;
}

export interface ScheduleRecord {
  name: string;
  cron: string;
  timezone: string | null;
  jobType: string;
  payload: Json;
  enabled: boolean;
  lastSlot: number | null;
  lastFiredAt: number | null;
  lastJobId: number | null;
  lastOutcome: "enqueued" | "skipped" | null;
  createdAt: number;
  updatedAt: number;
}

export type FireResult =
  /** The slot was handled before (a timer and a catch-up raced, or a restart at that moment). */
  | { outcome: "already-fired" }
  /** The previous run is still pending or running: no overlap, the slot is recorded as skipped. */
  | { outcome: "skipped"; job: JobRecord }
  | { outcome: "enqueued"; job: JobRecord };

export interface ScheduleStore {
  list(): Promise<ScheduleRecord[]>;
  get(name: string): Promise<ScheduleRecord | null>;
  /** Creates the schedule, or changes its expression, time zone, type and payload. */
  upsert(s: { name: string; cron: string; timezone: string | null; jobType: string; payload: Json }, now: number): Promise<ScheduleRecord>;
  /** Creates the schedule only if it does not exist (built-in defaults). */
  ensure(s: { name: string; cron: string; timezone: string | null; jobType: string; payload: Json }, now: number): Promise<void>;
  setEnabled(name: string, enabled: boolean, now: number, skipUntil: number | null): Promise<ScheduleRecord | null>;
  remove(name: string): Promise<boolean>;
  /**
   * One firing, atomically: refuses a slot at or before the last one handled (slot null:
   * a manual run, never refused), skips while a job of this schedule is live, otherwise
   * inserts the job. The slot is recorded in the same transaction.
   */
  fire(name: string, slot: number | null, now: number, job: NewJob): Promise<FireResult | null>;
}

export interface MetaStore {
  get(key: string): Promise<Json | null>;
  set(key: string, value: Json): Promise<void>;
}

export interface Store {
  readonly boards: BoardStore;
  readonly tasks: TaskStore;
  readonly taskEvents: TaskEventStore;
  readonly jobs: JobStore;
  readonly schedules: ScheduleStore;
  readonly meta: MetaStore;
  readonly attachments: AttachmentStore;
  close(): Promise<void>;
}
