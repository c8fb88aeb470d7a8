// The Store: everything the daemon keeps, behind one narrow interface. The SQLite
// implementation (store/sqlite/) is the default; a PostgreSQL one can sit behind the same
// interface. No connection or transaction type leaks out: each method is one atomic unit.
//
// Times are epoch milliseconds here; the wire format (ISO strings) is made at the edge.

import type { Attachment, Board, Json, JobStatus, Task, TaskEvent, TaskEventType, TaskStatus } from "../protocol/types.js";

/**
 * How safe an acknowledged write is; each store says what that means in its own terms (for
 * SQLite: store/sqlite/open.ts).
 * - `full`: a write that was acknowledged survives a crash of the daemon, of the OS, and a
 *   power cut.
 * - `process`: it survives a crash of the daemon; an OS crash or a power cut may lose the
 *   latest writes, never the store's consistency.
 */
export type Durability = "full" | "process";

/** What every store is opened with, whatever its kind. */
export interface StoreOptions {
  durability: Durability;
  /** The board's policy for the task events each task write implies (src/board/task-events.ts). */
  taskEvents: TaskEventPolicy;
  /**
   * A store several daemons share: tell the others at once when jobs become claimable or a
   * cancel is asked for (PostgreSQL: NOTIFY), and hear them (LISTEN). False: they learn it by
   * polling only (every CLAIM_POLL_MS, and the heartbeat). Default true; ignored by SQLite.
   */
  notify?: boolean;
}

/** A task event as a write implies it, before the store gives it an id, board and time. */
export interface NewTaskEvent {
  type: TaskEventType;
  data: { [k: string]: Json };
}

/** Pure functions of the task as it is in the store's transaction; see src/board/task-events.ts. */
export interface TaskEventPolicy {
  created(task: Task): NewTaskEvent[];
  updated(before: Task, after: Task): NewTaskEvent[];
  deleted(task: Task): NewTaskEvent[];
}

export interface NewTask {
  title: string;
  board: string;
  description: string;
  assignee: string | null;
  dueDate: string | null;
  status: TaskStatus;
}

/** The fields to change; a field left out or given as undefined keeps its value (null clears a nullable one). */
export type TaskPatch = Partial<NewTask>;

export interface TaskFilter {
  board?: string;
  status?: TaskStatus;
  assignee?: string;
  /** Only tasks with a greater id (a list read in slices: daemon/routes/slices.ts). */
  afterId?: number;
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

/**
 * A job as lists show it: no payload, result nor errors, only their start and size (see
 * JobSummary in the protocol), so a list costs little whatever the jobs hold.
 */
export interface JobSummaryRecord extends Omit<JobRecord, "payload" | "result" | "errors" | "state"> {
  payloadBytes: number;
  payloadPreview: string;
  payloadTruncated: boolean;
  resultBytes: number | null;
  resultPreview: string | null;
  resultTruncated: boolean;
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
  /** result: what the handler returned all the same (it ignored its signal); kept, the job stays cancelled. */
  | { id: number; attempt: number; outcome: "cancelled"; error?: string; result?: Json }
  /** Put back to pending without counting the attempt (graceful shutdown, or it never began). */
  | { id: number; attempt: number; outcome: "requeue" }
) & {
  /** When its turn began, when that was not written yet (a claim leaves started_at null until its begin). */
  startedAt?: number;
};

/** Everything the engine writes in one turn, committed as one transaction (group commit). */
export interface TickBatch {
  now: number;
  /**
   * The daemon run writing: claims record it, and every write of an attempt (finish,
   * progress, checkpoint, log, begin) is fenced on it and the attempt: a write whose job is no
   * longer running that attempt for this owner is refused (TickResult.refused), not applied.
   */
  owner: string;
  inserts: NewJob[];
  finishes: Finish[];
  progress: { id: number; attempt: number; progress: number; message: string | null }[];
  /** Checkpoints of running attempts (fenced like finishes). */
  checkpoints: { id: number; attempt: number; state: Json }[];
  /** Log lines of running attempts. */
  logs: { id: number; attempt: number; at: number; message: string }[];
  /** Claimed jobs whose turn has begun in their slot: started_at and slot are written. */
  begins: { id: number; attempt: number; at: number; slot: number }[];
  /** The claim, after every other write of the batch; null: claim nothing. */
  claim: ClaimLimits | null;
}

/**
 * How many due jobs a claim may take, as data every store applies the same way. Due pending
 * jobs of types not paused are taken in order (priority DESC, runAt, id), at most `limit`.
 * Each job draws one from every budget its type draws on (`draws[type]`, or `otherTypes` for
 * a type not listed); the claim stops at the first job that finds one of them used up, so no
 * job overtakes one that could not be taken. A budget not in `budgets` is 0.
 */
export interface ClaimLimits {
  limit: number;
  /** Skipped (not stopped at): their jobs wait while the others run. */
  pausedTypes: string[];
  budgets: Record<string, number>;
  draws: Record<string, string[]>;
  otherTypes: string[];
  /**
   * The claim's share of the main thread, in ms: an embedded store, whose claim runs on the
   * daemon's thread, stops taking jobs once the claim has run this long, after one job at
   * least (claim-budget.ts); the jobs left are claimed by the next tick. (Not counted from the
   * tick's start: a tick that stored a batch of 1,000 new jobs would then claim one job.)
   * Absent: no bound. A store whose claim does not hold the thread (PostgreSQL: one
   * statement, awaited) may ignore it.
   */
  budgetMs?: number;
}

/** A claim on its own: the limits, for whom (recorded as the jobs' owner), and when. */
export interface ClaimRequest extends ClaimLimits {
  owner: string;
  now: number;
}

export interface ClaimResult {
  /** Now running for the owner, attempts counted; slot and started_at are not set yet (see begins). */
  claimed: JobRecord[];
  /** When the claim ran out of due jobs (not of room): the earliest runAt among pending jobs left (null if none). */
  nextDueAt: number | null;
}

export interface TickResult {
  /** One per insert, in order: the stored job, and false where a live job with the same unique key was returned instead. */
  inserted: { job: JobRecord; created: boolean }[];
  /** The finished jobs as stored (fenced finishes that no longer applied are left out). */
  finished: JobRecord[];
  claimed: JobRecord[];
  /** As ClaimResult.nextDueAt (null when no claim was asked for). */
  nextDueAt: number | null;
  /** The writes that were refused: their attempt is no longer the job's running one for this owner. */
  refused: RefusedWrite[];
  /**
   * A store that claims after committing the tick's writes (PostgreSQL, claimAfterInserts):
   * why that claim failed. The writes stand; nothing was claimed, and nextDueAt says when to
   * try again.
   */
  claimError?: Error;
}

/** A write of an attempt the store refused (fenced out): the job moved on without it. */
export interface RefusedWrite {
  write: "finish" | "progress" | "checkpoint" | "log" | "begin";
  id: number;
  attempt: number;
}

/**
 * Which running jobs rescue puts back: those whose owner is none of the live ones (a daemon
 * run that is gone). On SQLite, at start, the only live owner is the run starting.
 */
export interface RescueRequest {
  now: number;
  liveOwners: string[];
}

export interface JobFilter {
  status?: JobStatus;
  type?: string;
  limit?: number;
  beforeId?: number;
}

export interface JobStore {
  tick(batch: TickBatch): Promise<TickResult>;
  /** A claim alone (a tick with nothing else to write). */
  claim(request: ClaimRequest): Promise<ClaimResult>;
  get(id: number): Promise<JobRecord | null>;
  /** Newest first, at most filter.limit (default 50): summaries, never whole payloads or results. */
  list(filter: JobFilter): Promise<JobSummaryRecord[]>;
  counts(): Promise<Record<JobStatus, number>>;
  /**
   * The jobs running for `owner` now (id and attempt), as the store sees them. The engine asks
   * after a claim whose outcome it could not know (its answer lost): a job the claim took for
   * it that it never received would otherwise stay running for a live owner, started by nobody.
   */
  runningFor(owner: string): Promise<{ id: number; attempt: number }[]>;
  /** Pending → cancelled. Null if the job was not pending. */
  cancelPending(id: number, now: number): Promise<JobRecord | null>;
  /**
   * A cancel asked for, through whichever daemon: a pending job is cancelled at once; for a
   * running one the request is recorded with a deadline (the store's clock + graceMs; a second
   * request keeps the first's), and its node is told (Heartbeat.cancels, and at once where the
   * store can: NodeSessionEvents.cancel). From then on every end of that attempt is cancelled
   * (a result it returns is kept, the status is cancelled), and so is its rescue; a job still
   * running past its deadline + lease is ended cancelled by NodeStore.rescueDead (the reaper).
   * Null if there is no such job.
   */
  requestCancel(id: number, graceMs: number, now: number): Promise<CancelAnswer | null>;
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
   * Running jobs whose owner is not live (a daemon run that died) go back to pending, each
   * with its attempt counted and an "interrupted" error, those handed over ahead of their
   * turn too (they may have begun). Jobs of a live owner are left alone. A job whose cancel
   * was requested is ended cancelled instead (counted in `cancelled`, not `interrupted`).
   */
  rescue(request: RescueRequest): Promise<{ interrupted: number; cancelled: number }>;
}

/** What a cancel request found (JobStore.requestCancel). */
export type CancelAnswer =
  /** It was pending: cancelled now. */
  | { outcome: "cancelled"; job: JobRecord }
  /**
   * It runs, for `owner` (a node's id; null for a job a daemon before nodes left running,
   * which rescue ends): the request is recorded; deadline on the store's clock (epoch ms).
   */
  | { outcome: "requested"; job: JobRecord; owner: string | null; deadline: number }
  /** It had ended already (complete, failed or cancelled): nothing changed. */
  | { outcome: "ended"; job: JobRecord };

export interface AttachmentStore {
  /**
   * Records an upload and keeps its bytes (the file "original", UPLOAD_FILES in
   * protocol/files.ts), together in one transaction: both or neither.
   */
  create(a: { taskId: number | null; name: string; file: NewFile }, now: number): Promise<Attachment>;
  get(id: number): Promise<Attachment | null>;
  listForTask(taskId: number): Promise<Attachment[]>;
  setThumbnailJob(id: number, jobId: number): Promise<void>;
  /**
   * Records the thumbnail job's outcome. `artifact`: the thumbnail job's artifact of that name
   * is copied to the attachment's file "thumbnail" in the same transaction, so the thumbnail
   * outlives the job (pruned with its artifacts). Returns the path of the temporary copy an
   * upload made before files were kept in the store left (now to delete), if any.
   */
  finishThumbnail(id: number, outcome: { jobId: number; artifact: string } | { error: string }): Promise<string | null>;
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
  /** The slot, or a later one, was handled before (a timer and a catch-up raced, another daemon, a restart at that moment). */
  | { outcome: "already-fired" }
  /** A live job holds the job's unique key (the previous run is still pending or running): no job is added, the slot is recorded as skipped. */
  | { outcome: "skipped"; job: JobRecord }
  | { outcome: "enqueued"; job: JobRecord }
  /** The schedule is paused (by this daemon or another one sharing the store): the slot is not fired or recorded. */
  | { outcome: "paused" }
  /**
   * The slot is later than the store's clock: a daemon whose clock runs fast never fires a
   * slot before it comes. Nothing is recorded; `storeNow` is the store's time, to wait from.
   * (A store whose clock is the daemon's, as SQLite's, never answers this.)
   */
  | { outcome: "early"; storeNow: number };

/** One slot a schedule handled: at most one per (schedule, slot), ever (until pruned). */
export interface ScheduleRun {
  schedule: string;
  slot: number;
  firedAt: number;
  outcome: "enqueued" | "skipped";
  jobId: number;
}

export interface ScheduleStore {
  list(): Promise<ScheduleRecord[]>;
  get(name: string): Promise<ScheduleRecord | null>;
  /** Creates the schedule, or changes its expression, time zone, type and payload. */
  upsert(s: { name: string; cron: string; timezone: string | null; jobType: string; payload: Json }, now: number): Promise<ScheduleRecord>;
  /** Creates the schedule only if it does not exist (built-in defaults). */
  ensure(s: { name: string; cron: string; timezone: string | null; jobType: string; payload: Json }, now: number): Promise<void>;
  /** skipUntil moves lastSlot forward to it (never back): slots up to it count as handled. */
  setEnabled(name: string, enabled: boolean, now: number, skipUntil: number | null): Promise<ScheduleRecord | null>;
  /** Removes the schedule and the record of its fired slots. */
  remove(name: string): Promise<boolean>;
  /**
   * One firing, atomically, whoever else tries the same slot at the same time (another
   * handle, another process): the slot is recorded once, by the first to try; the others,
   * and any slot at or before the schedule's lastSlot, get already-fired. The winner inserts
   * `job`, unless a live job (pending or running) holds its unique key: then that job is
   * returned as skipped and none is added (the scheduler's no-overlap rule is that key:
   * scheduler/policy.ts). lastSlot, lastFiredAt, lastJobId and lastOutcome are recorded in the
   * same transaction. A slot of a paused schedule is refused (paused), and so is a slot later
   * than the store's clock (early). slot null: a manual run, never refused and not recorded
   * as a slot. Null if there is no such schedule.
   */
  fire(name: string, slot: number | null, now: number, job: NewJob): Promise<FireResult | null>;
  /** The slots a schedule handled, latest first, at most `limit` (default 100). */
  runs(name: string, limit?: number): Promise<ScheduleRun[]>;
  /** Forgets fired slots recorded before `firedBefore`; returns how many. They stay refused (at or before lastSlot). */
  pruneRuns(firedBefore: number): Promise<number>;
}

export interface MetaStore {
  get(key: string): Promise<Json | null>;
  set(key: string, value: Json): Promise<void>;
}

// ---- Job events (a shared store's own record of what happened to jobs) ----
//
// On a store several daemons share (PostgreSQL), each daemon sees only its own engine's
// events on its bus; a watcher must see every daemon's. Such a store keeps job events itself,
// written in the statements that make the changes, and reads them back in one order that
// every daemon and every process on the database shares, whose positions are cursors.
// SQLite has no such record (`Store.events` is null): one daemon serves its database, and its
// in-memory bus is the source of its event streams (src/daemon/sse.ts), as before.

/**
 * A position in the store's order of job events: opaque outside the store (make one only with
 * head, read or parse; order them only with compare). A string, so that it can be the id of
 * an event-stream frame and come back as a client's Last-Event-ID.
 */
export type EventCursor = string & { readonly __eventCursor: unique symbol };

/** What a status event shows of a job: its head (times in epoch ms), never payload, result nor errors. */
export type JobHeadRecord = Pick<
  JobRecord,
  "id" | "type" | "status" | "progress" | "progressMessage" | "attempts" | "maxAttempts" | "runAt" | "priority" | "uniqueKey" | "slot" | "error" | "createdAt" | "startedAt" | "finishedAt"
>;

/** One stored job event; `at` (epoch ms) is when it was written. */
export type StoredJobEvent = { cursor: EventCursor; jobId: number; at: number } & (
  /** The job's status, attempt or slot changed: enqueued, claimed, begun, finished, retried, requeued, rescued, cancelled. */
  | { kind: "status"; job: JobHeadRecord }
  /** A running attempt's progress, as written (coalesced by the engine: not every report). */
  | { kind: "progress"; attempt: number; progress: number; message: string | null }
  /** A log line as stored (its id is the stored line's, as `jobs.logs` gives it). */
  | { kind: "log"; line: { id: number; attempt: number; at: number; message: string } }
);

export type EventPage =
  | {
      /** In the store's order, after the cursor read from; at most the limit asked for. */
      events: StoredJobEvent[];
      /** Where the next read carries on: the last event's cursor, or past every event readable now. */
      next: EventCursor;
      /**
       * No write was in progress when the page was read: every event committed before the read
       * is in it or before it. When false, events committed just before may be readable only
       * a moment later (a reader that was told of a write reads again soon).
       */
      settled: boolean;
    }
  /** The events after that cursor are no longer all kept (pruned, or not recorded while nobody watched): start over from the current state. */
  | { reset: string };

export interface JobEventStore {
  /**
   * Events are recorded only while some process on the store watches (writing them costs
   * every write of a job): this process watches until the returned function is called (it
   * may be called more than once). Resolves once events are recorded, for every writer on the
   * store. Readers hold a watch: a read without one may be answered reset, as may a read from
   * a cursor from before a spell when nobody watched.
   */
  watch(): Promise<() => void>;
  /**
   * The cursor past every event readable now: a read from it gives only events written later,
   * and every event written from then on (for a watcher: every write that has not ended by
   * then is either before the head, with its events, or recorded after it).
   */
  head(): Promise<EventCursor>;
  /**
   * The events after `after` in the store's order, at most `limit`; of job `jobId` only when
   * given. The order is the same for every reader, and a reader carrying on from `next` misses
   * no event and gets none twice, whatever commits late, whichever process wrote it: an event
   * becomes readable only once every write that began before it has ended.
   */
  read(after: EventCursor, limit: number, jobId?: number): Promise<EventPage>;
  /** A client's id as a cursor of this store, or null (not a cursor, or one of another database). Synchronous. */
  parse(text: string): EventCursor | null;
  /** Orders two cursors of this store (negative: a is before b). Synchronous. */
  compare(a: EventCursor, b: EventCursor): number;
  /**
   * Calls `hint` when events may have been written: at once for this store's own writes, and,
   * where the store can hear of them, for other processes' (PostgreSQL: LISTEN/NOTIFY). A
   * hint is only a reason to read sooner; a reader that must not wait long polls as well.
   * Returns the function that stops the hints. Synchronous.
   */
  onWrite(hint: () => void): () => void;
}

// ---- Nodes: the daemons serving one store -------------------------------------------------
//
// Terminology
// - node: one daemon run serving the store, under an id of its own (the owner its claims
//   record and its writes are fenced on). A node that fences itself registers again under a
//   new id: an id is never live twice.
// - lease: how long the node may claim and run jobs without renewing it, on the store's clock;
//   renewed by every heartbeat.
// - dead: a node whose lease lapsed, or (PostgreSQL) whose control session is gone (its lock
//   released) and whose last heartbeat is older than `silentMs`. Its running jobs go back to
//   pending as interrupted attempts, as a dead daemon's always have (JobStore.rescue).

/** Who a node is: its id, and the host and process serving it. */
export interface NodeIdentity {
  id: string;
  host: string;
  pid: number;
}

/** A node as `teamwork nodes` shows it. */
export interface NodeRecord extends NodeIdentity {
  startedAt: number;
  heartbeatAt: number;
  /** How long ago its last heartbeat was, on the store's clock (whatever this host's says). */
  heartbeatAgeMs: number;
  leaseUntil: number;
  /** Stopping gracefully: it claims nothing more and drains what it runs. */
  stopping: boolean;
  /** Jobs running for it now. */
  running: number;
}

/**
 * What a heartbeat answers (an object, so that what else the control connection will carry,
 * such as the ids of jobs cancelled elsewhere, has a place).
 */
export interface Heartbeat {
  /** The lease renewed until then (store clock), or null: the lease is lost (lapsed, or the node was found dead): fence. */
  leaseUntil: number | null;
  /** The store's clock at the heartbeat. */
  storeNow: number;
  /** The node's running jobs whose cancel was requested (JobStore.requestCancel), every heartbeat until they end. */
  cancels: CancelNotice[];
  /**
   * The session hears other daemons now (PostgreSQL: its LISTEN is in place on the control
   * connection, checked by this very heartbeat); false where there is nothing to hear.
   */
  listening: boolean;
}

/** A cancel requested for a job a node runs. */
export interface CancelNotice {
  id: number;
  /** The attempt running when it was asked for. */
  attempt: number;
  /** How much of the grace is left (from when the store answered; 0 once past the deadline). */
  graceLeftMs: number;
}

/** What a node's session reports, as events. */
export interface NodeSessionEvents {
  /** The control connection is gone, and the node's lock with it: the node must fence at once. Emitted once. */
  lost: (reason: string) => void;
  /**
   * Another daemon made jobs claimable (an enqueue, a retry, a rescue, a schedule's firing):
   * claim now rather than at the next poll. A hint only: one may be lost, and the poll stays.
   */
  jobs: () => void;
  /** A cancel was requested for a job this node runs (also in every heartbeat's cancels until it ends). */
  cancel: (notice: CancelNotice) => void;
}

/**
 * A registered node, on a control connection of its own (PostgreSQL: one pg session holding
 * the node's advisory lock, never a pooled one).
 */
export interface NodeSession {
  readonly id: string;
  /** Renews the lease for leaseMs from the store's clock, if it has not lapsed. */
  heartbeat(leaseMs: number): Promise<Heartbeat>;
  /** A graceful stop begins: the node claims nothing more (it still heartbeats while it drains). */
  markStopping(): Promise<void>;
  /**
   * A graceful end: jobs still running for the node go back to pending (interrupted; on SQLite
   * at the next daemon's start), its row goes, and the control connection is closed.
   */
  leave(now: number): Promise<void>;
  /** Drops the control connection without a word (a fence): the row is left for rescue to find dead. */
  abandon(): void;
  on<E extends keyof NodeSessionEvents>(event: E, listener: NodeSessionEvents[E]): void;
}

export interface NodeStore {
  /**
   * False when one node serves the store at a time (SQLite: the daemon of the home). Then
   * there is no lease to keep: the nodes before this one are gone by definition.
   */
  readonly shared: boolean;
  /** Registers a node with a lease of leaseMs (refused if the id is taken). */
  register(who: NodeIdentity, leaseMs: number): Promise<NodeSession>;
  /** The nodes serving the store, oldest first. */
  list(): Promise<NodeRecord[]>;
  /**
   * The running jobs of nodes that are gone go back to pending, each with its attempt counted
   * and the "interrupted" error JobStore.rescue gives; the dead nodes' rows go. Shared
   * (PostgreSQL): dead nodes (see Terminology), each handled by one rescuer however many run at
   * once, and running jobs of an owner that is no node at all. One node at a time (SQLite):
   * every owner but `self`. Returns the dead nodes' ids and how many jobs went back.
   *
   * A job of a dead node whose cancel was requested is ended cancelled instead (never run
   * again); and the reaper: a running job still running `leaseMs` past its cancel deadline (its
   * node lives but did not stop it) is ended cancelled too, whoever runs it, and its node's
   * later writes are refused. `cancelled` counts both.
   */
  rescueDead(request: { now: number; self: string; silentMs: number; leaseMs: number }): Promise<{ nodes: string[]; interrupted: number; cancelled: number }>;
}

export interface Store {
  readonly boards: BoardStore;
  readonly tasks: TaskStore;
  readonly taskEvents: TaskEventStore;
  readonly jobs: JobStore;
  readonly schedules: ScheduleStore;
  readonly meta: MetaStore;
  readonly attachments: AttachmentStore;
  /** Job events kept by the store for every daemon on it (PostgreSQL); null where the daemon's bus is the only source (SQLite). */
  readonly events: JobEventStore | null;
  /** The daemons serving the store (issue 14). */
  readonly nodes: NodeStore;
  /** Bytes kept in the store: job artifacts, uploads (the files part, below). */
  readonly files: FileStore;
  /** Where the data is, fit to show: a file path, or postgres://user@host:port/database (never a password). */
  readonly where: string;
  close(): Promise<void>;
}

// ---- Files: bytes kept in the store (job artifacts, uploads) -------------------------------
// One value per file in one row, written whole in one transaction (never a partial row); read
// back in slices where the database can serve a slice without reading the rest. The size
// limit is the caller's (protocol/files.ts fileTooLarge): the store keeps what it is given.

/** A file's description as the store keeps it; its bytes are read with FileStore.open. */
export interface StoredFile {
  /** Changes whenever the file is written again (a retry that puts the same name): a reader of one id never mixes two versions. */
  id: number;
  name: string;
  mediaType: string;
  size: number;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
  createdAt: number;
}

export interface NewFile {
  name: string;
  mediaType: string;
  bytes: Buffer;
}

/** Whose a file is: a job's artifact, or an attachment's (its original bytes, its thumbnail). */
export type FileOwner = { jobId: number } | { attachmentId: number };

export interface FileStore {
  /**
   * Stores an artifact of a job's running attempt, replacing one of the same name (an earlier
   * attempt's). Fenced like every write of an attempt: null, and nothing written, unless the job
   * is running that attempt (a late write of a lost attempt is refused). Deleted with its job.
   */
  putArtifact(at: { jobId: number; attempt: number }, file: NewFile, now: number): Promise<StoredFile | null>;
  get(owner: FileOwner, name: string): Promise<StoredFile | null>;
  /** A job's or an attachment's files, by name. */
  list(owner: FileOwner): Promise<StoredFile[]>;
  /**
   * The bytes of a file, in order, in slices (one or more Buffers); null if there is no such
   * file. A file deleted or replaced while it is read fails the read (StoreError unavailable).
   */
  open(id: number): Promise<{ file: StoredFile; chunks: AsyncIterable<Buffer> } | null>;
  /** The bytes of a file, whole, in one Buffer allocated once; null if there is no such file. */
  readAll(id: number): Promise<{ file: StoredFile; bytes: Buffer } | null>;
  /** An upload's bytes (its file "original"), whole, with the name it was uploaded under; null if none is kept. */
  readUpload(attachmentId: number): Promise<{ uploadName: string; file: StoredFile; bytes: Buffer } | null>;
}
