// The client applications use (`import { connect } from "teamwork"`), and the CLI too: every
// operation of the socket API as a method, grouped as the CLI groups them (jobs, tasks,
// boards, schedules, queue, daemon), over one transport (client.ts: one RPC connection
// reused for every call, SSE for streams). Errors are always TeamworkError.
//
// Payloads and results are typed per job type by the JobTypes map (protocol/job-types.ts),
// which applications extend by declaration merging; types outside the map take and give JSON.

import { parseDuration } from "../lib/duration.js";
import { TeamworkError } from "../lib/errors.js";
import type { ControlEvent, StreamEvent } from "../protocol/events.js";
import type { JobType, PayloadOf, ResultOf } from "../protocol/job-types.js";
import { MAX_LIST_LIMIT, type JobSpec, type RouteInput, type RouteName, type RouteOutput } from "../protocol/routes.js";
import type {
  Attachment,
  Board,
  CancelElsewhere,
  CleanupStats,
  DaemonStatus,
  DigestPreview,
  Health,
  Job,
  JobLogLine,
  JobStatus,
  JobSummary,
  JobWhy,
  Json,
  NodeInfo,
  QueueState,
  Schedule,
  Stats,
  Task,
  TaskEvent,
  TaskStatus,
} from "../protocol/types.js";
import type { Client, Download } from "./client.js";
import type { FileInfo } from "../protocol/files.js";
import { waitForJob, watchJobEvents, type WaitOptions, type WatchOptions } from "./watch.js";

/** A job type name: one of the map's (checked), or any other string (JSON in and out). */
export type AnyJobType = JobType | (string & {});
/** What a job of type K takes: the map's type for a known K, JSON otherwise. */
export type PayloadFor<K extends string> = K extends JobType ? PayloadOf<K> : Json;
/** What a job of type K completes with: the map's type for a known K, JSON otherwise. */
export type ResultFor<K extends string> = K extends JobType ? ResultOf<K> : Json;

/** A job whose payload and result are typed by its type. */
export type JobOf<K extends string = string> = Omit<Job, "type" | "payload" | "result"> & { type: K; payload: PayloadFor<K>; result: ResultFor<K> | null };

export interface EnqueueOptions {
  /** While a job with this key is pending or running, enqueueing it again returns that job (created: false). */
  uniqueKey?: string;
  /** Start at this time (not before). */
  runAt?: Date | string;
  /** Or start after this delay: milliseconds, or a duration like "10m". */
  delay?: number | string;
  /** Higher runs first, -1000 to 1000 (default 0). */
  priority?: number;
  /** Attempts before the job fails, 1 to 100 (default: the type's, else 3). */
  maxAttempts?: number;
}

/** A job by its id, or the job itself (as enqueue answers it): then typed by its type. */
export type JobRef<K extends string = AnyJobType> = number | { id: number; type: K };

const idOf = (job: JobRef<string>): number => (typeof job === "number" ? job : job.id);

/** One job of an enqueueMany batch. */
export type JobRequest<K extends string = AnyJobType> = { type: K; payload?: PayloadFor<K> } & EnqueueOptions;

/** The payload argument: optional when the type's payload may be empty. */
type PayloadArgs<K extends string> = {} extends PayloadFor<K> ? [payload?: PayloadFor<K>, options?: EnqueueOptions] : [payload: PayloadFor<K>, options?: EnqueueOptions];

export interface Enqueued<K extends string = string> {
  job: JobOf<K>;
  /** False when a live job held the uniqueKey: `job` is that job. */
  created: boolean;
}

export interface ListJobsOptions {
  status?: JobStatus;
  type?: string;
  /** At most this many jobs in all (default: every one that matches). */
  limit?: number;
  /** Jobs fetched per call (default 100, at most 1000). */
  pageSize?: number;
  /** Only jobs older than this id (lists are newest first). */
  beforeId?: number;
}

export interface TaskInput {
  title: string;
  board?: string;
  description?: string;
  assignee?: string | null;
  /** YYYY-MM-DD */
  dueDate?: string | null;
  status?: TaskStatus;
}

export type TaskChanges = Partial<TaskInput>;

export interface ScheduleInput {
  cron: string;
  /** IANA time zone; null for the daemon's local time. */
  timezone?: string | null;
  type?: string;
  payload?: Json;
}

/** The wire form of one job to enqueue: options as the route takes them (delay → delayMs, runAt → ISO text). */
export function toJobSpec(type: string, payload: unknown, o: EnqueueOptions = {}): JobSpec {
  let delayMs: number | undefined;
  if (typeof o.delay === "string") {
    try {
      delayMs = parseDuration(o.delay);
    } catch (err) {
      throw new TeamworkError("invalid_input", `delay: ${(err as Error).message}`);
    }
  } else delayMs = o.delay;
  return {
    type,
    ...(payload === undefined ? {} : { payload: payload as Json }),
    ...(o.uniqueKey === undefined ? {} : { uniqueKey: o.uniqueKey }),
    ...(o.runAt === undefined ? {} : { runAt: o.runAt instanceof Date ? o.runAt.toISOString() : o.runAt }),
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(o.priority === undefined ? {} : { priority: o.priority }),
    ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
  };
}

class Jobs {
  constructor(private readonly t: Client) {}

  /** Queues a job; answers once it is committed. */
  async enqueue<K extends AnyJobType>(type: K, ...[payload, options]: PayloadArgs<K>): Promise<Enqueued<K>> {
    return (await this.t.call("jobsEnqueue", toJobSpec(type, payload, options))) as unknown as Enqueued<K>;
  }

  /** Queues several jobs in one commit: all of them or none. Answers in input order. */
  async enqueueMany<T extends readonly JobRequest[] | []>(
    jobs: T & { [I in keyof T]: T[I] extends { type: infer K extends string } ? JobRequest<K> : never },
  ): Promise<{ -readonly [I in keyof T]: T[I] extends { type: infer K extends string } ? Enqueued<K> : never }> {
    const specs = (jobs as readonly JobRequest<string>[]).map(({ type, payload, ...o }) => toJobSpec(type, payload, o));
    return (await this.t.call("jobsEnqueueBatch", { jobs: specs })).jobs as never;
  }

  /** One job, whole (payload, result, every attempt's error). */
  async get<K extends AnyJobType = AnyJobType>(id: number): Promise<JobOf<K>> {
    return (await this.t.call("jobsGet", { id })).job as unknown as JobOf<K>;
  }

  /**
   * Jobs newest first, as summaries (payload and result previews), fetched a page at a time
   * as the iteration goes: `for await (const job of client.jobs.list({ status: "failed" }))`.
   */
  async *list(o: ListJobsOptions = {}): AsyncGenerator<JobSummary, void, undefined> {
    let left = o.limit ?? Number.POSITIVE_INFINITY;
    let beforeId = o.beforeId;
    const size = Math.min(o.pageSize ?? 100, MAX_LIST_LIMIT);
    while (left > 0) {
      const limit = Math.min(size, left);
      const { jobs } = await this.t.call("jobsList", { status: o.status, type: o.type, limit, beforeId });
      for (const j of jobs) yield j;
      left -= jobs.length;
      if (jobs.length < limit) return;
      beforeId = jobs.at(-1)!.id;
    }
  }

  /** One page of jobs (newest first): what `list` iterates over. */
  async page(o: Omit<ListJobsOptions, "pageSize"> = {}): Promise<JobSummary[]> {
    return (await this.t.call("jobsList", { status: o.status, type: o.type, limit: o.limit, beforeId: o.beforeId })).jobs;
  }

  /**
   * Cancels a pending or running job, whichever daemon runs it; the job once it has stopped
   * (or, with `wait: false`, once the cancel is recorded). See cancelOn for the node it ran on.
   */
  async cancel(id: number, o: { wait?: boolean } = {}): Promise<Job> {
    return (await this.cancelOn(id, o)).job;
  }

  /** As cancel, with `runsOn`: the other daemon (node) that ran the job and stops it, if it was not this one. */
  async cancelOn(id: number, o: { wait?: boolean } = {}): Promise<{ job: Job; runsOn?: CancelElsewhere }> {
    return this.t.call("jobsCancel", { id, wait: o.wait });
  }

  async retry(id: number): Promise<Job> {
    return (await this.t.call("jobsRetry", { id })).job;
  }

  /** Removes finished jobs older than a duration ("7d"; default: the daemon's setting). */
  async prune(o: { olderThan?: string } = {}): Promise<number> {
    return (await this.t.call("jobsPrune", { olderThan: o.olderThan })).pruned;
  }

  /** Why the job is not running, or what it is doing. */
  why(id: number): Promise<JobWhy> {
    return this.t.call("jobsWhy", { id });
  }

  /** The lines the job logged (the newest 200), or those after a line's id. */
  async logs(id: number, o: { afterId?: number } = {}): Promise<JobLogLine[]> {
    return (await this.t.call("jobsLogs", { id, afterId: o.afterId })).logs;
  }

  /**
   * The job's events, from its current status to its final one (the last yielded), across
   * daemon restarts. Breaking out of the loop closes the stream.
   */
  watch(job: JobRef, o: WatchOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    this.t.willStream();
    return watchJobEvents(this.t, idOf(job), o);
  }

  /**
   * Waits for the job to end: resolves with its result when it completed, rejects with a
   * JobFailedError (the job and its last error) when it failed or was cancelled, and with a
   * TeamworkError "timeout" or "aborted" when told to stop waiting. Given the job (as
   * enqueue answers it) rather than its id, the result is typed by the job's type.
   */
  async wait<K extends AnyJobType = AnyJobType>(job: JobRef<K>, o: WaitOptions = {}): Promise<ResultFor<K>> {
    this.t.willStream();
    return (await waitForJob(this.t, idOf(job), o)).result as ResultFor<K>;
  }

  /** As wait, resolving with the whole job (its result included). */
  async waitForJob<K extends AnyJobType = AnyJobType>(job: JobRef<K>, o: WaitOptions = {}): Promise<JobOf<K>> {
    this.t.willStream();
    return (await waitForJob(this.t, idOf(job), o)) as unknown as JobOf<K>;
  }

  // Files a job stored (ctx.files.putArtifact), fetched from any node of a team.

  /** A job's artifacts: name, media type, size, SHA-256 (not the bytes). */
  async artifacts(id: number): Promise<FileInfo[]> {
    return (await this.t.call("jobsArtifacts", { id })).artifacts;
  }

  /**
   * One artifact's bytes, streamed: its description and `body`, a readable stream to pipe
   * somewhere (or collect). Rejects not_found for a job or an artifact that does not exist.
   */
  artifact(id: number, name: string): Promise<Download> {
    return this.t.download("jobsArtifact", { id, name });
  }
}

class Tasks {
  constructor(private readonly t: Client) {}

  async add(input: TaskInput): Promise<Task> {
    return (await this.t.call("tasksAdd", input)).task;
  }

  async list(filter: { board?: string; status?: TaskStatus; assignee?: string; limit?: number } = {}): Promise<Task[]> {
    return (await this.t.call("tasksList", filter)).tasks;
  }

  /** A task with its attachments and its history. */
  async show(id: number): Promise<{ task: Task; attachments: Attachment[]; events: TaskEvent[] }> {
    const { task, attachments } = await this.t.call("tasksGet", { id });
    const { events } = await this.t.call("taskEventsList", { taskId: id });
    return { task, attachments, events };
  }

  async get(id: number): Promise<{ task: Task; attachments: Attachment[] }> {
    return this.t.call("tasksGet", { id });
  }

  async edit(id: number, changes: TaskChanges): Promise<Task> {
    return (await this.t.call("tasksEdit", { id, ...changes })).task;
  }

  async done(id: number): Promise<Task> {
    return (await this.t.call("tasksDone", { id })).task;
  }

  /** Assigns the task; `job` is the assignment email queued for it (null when nothing changed). */
  assign(id: number, assignee: string): Promise<{ task: Task; job: Job | null }> {
    return this.t.call("tasksAssign", { id, assignee });
  }

  async remove(id: number): Promise<Task> {
    return (await this.t.call("tasksRemove", { id })).task;
  }

  /** The board's history (task events), oldest first, after an event id. */
  async events(filter: { taskId?: number; board?: string; afterId?: number; limit?: number } = {}): Promise<TaskEvent[]> {
    return (await this.t.call("taskEventsList", filter)).events;
  }
}

class Boards {
  constructor(private readonly t: Client) {}

  async list(): Promise<Board[]> {
    return (await this.t.call("boardsList", {})).boards;
  }

  async add(name: string): Promise<Board> {
    return (await this.t.call("boardsAdd", { name })).board;
  }
}

class Schedules {
  constructor(private readonly t: Client) {}

  async list(): Promise<Schedule[]> {
    return (await this.t.call("schedulesList", {})).schedules;
  }

  /** Creates or replaces the schedule `name`. */
  async set(name: string, s: ScheduleInput): Promise<Schedule> {
    return (await this.t.call("schedulesSet", { name, ...s })).schedule;
  }

  async pause(name: string): Promise<Schedule> {
    return (await this.t.call("schedulesPause", { name })).schedule;
  }

  async resume(name: string): Promise<Schedule> {
    return (await this.t.call("schedulesResume", { name })).schedule;
  }

  /** Fires the schedule now (skipped when its previous run is still live). */
  run(name: string): Promise<{ outcome: "enqueued" | "skipped"; job: Job }> {
    return this.t.call("schedulesRun", { name });
  }

  async remove(name: string): Promise<Schedule> {
    return (await this.t.call("schedulesRemove", { name })).schedule;
  }

  cleanupStats(): Promise<CleanupStats> {
    return this.t.call("cleanupStats", {});
  }

  digestPreview(): Promise<DigestPreview> {
    return this.t.call("digestPreview", {});
  }
}

class Queue {
  constructor(private readonly t: Client) {}

  state(): Promise<QueueState> {
    return this.t.call("queueGet", {});
  }

  /** Stops starting jobs (of one type, or all); running jobs go on. */
  pause(type?: string): Promise<QueueState> {
    return this.t.call("queuePause", { type });
  }

  resume(type?: string): Promise<QueueState> {
    return this.t.call("queueResume", { type });
  }

  concurrency(concurrency: number): Promise<QueueState> {
    return this.t.call("queueConcurrency", { concurrency });
  }

  /** Per-type counts and times since a duration ago ("24h" by default). */
  stats(o: { since?: string } = {}): Promise<Stats> {
    return this.t.call("stats", { since: o.since });
  }
}

class Daemon {
  constructor(private readonly t: Client) {}

  health(): Promise<Health> {
    return this.t.call("health", {});
  }

  status(): Promise<DaemonStatus> {
    return this.t.call("daemonStatus", {});
  }

  /** The daemons serving the store (nodes), oldest first; `self` marks the one answering. */
  async nodes(): Promise<NodeInfo[]> {
    return (await this.t.call("nodesList", {})).nodes;
  }

  /** Asks the daemon to stop (running jobs get their grace period). */
  async stop(): Promise<void> {
    await this.t.call("daemonStop", {});
  }

  /** Prometheus text exposition. */
  metrics(): Promise<string> {
    return this.t.call("metrics", {});
  }
}

class Uploads {
  constructor(private readonly t: Client) {}

  /** Copies a file (an absolute path the daemon can read) into the uploads; images get a thumbnail job. */
  add(path: string, o: { taskId?: number } = {}): Promise<{ upload: Attachment; job: Job | null }> {
    return this.t.call("uploadsAdd", { path, taskId: o.taskId });
  }

  async get(id: number): Promise<Attachment> {
    return (await this.t.call("uploadsGet", { id })).upload;
  }

  /** An upload's bytes ("original", under its name) or its thumbnail's, streamed as Jobs.artifact. */
  file(id: number, which: "original" | "thumbnail" = "original"): Promise<Download> {
    return this.t.download("uploadsFile", { id, name: which });
  }
}

export class TeamworkClient {
  readonly jobs: Jobs;
  readonly tasks: Tasks;
  readonly boards: Boards;
  readonly schedules: Schedules;
  readonly queue: Queue;
  readonly daemon: Daemon;
  readonly uploads: Uploads;

  constructor(
    /** The connection: one RPC connection reused for every call, SSE for streams. */
    readonly transport: Client,
  ) {
    this.jobs = new Jobs(transport);
    this.tasks = new Tasks(transport);
    this.boards = new Boards(transport);
    this.schedules = new Schedules(transport);
    this.queue = new Queue(transport);
    this.daemon = new Daemon(transport);
    this.uploads = new Uploads(transport);
  }

  /** Starts loading what streams need, so that a watch soon after a call opens at once. */
  willStream(): void {
    this.transport.willStream();
  }

  /** The daemon's socket. */
  get socket(): string {
    return this.transport.socket;
  }

  /** Any route of the socket API by name (docs/protocol.md), typed by the protocol's route table. */
  call<K extends RouteName>(name: K, input: RouteInput<K>): Promise<RouteOutput[K]> {
    return this.transport.call(name, input);
  }

  /**
   * Every job's events as they happen, until `close()` (or the daemon goes). A callback
   * rather than an iterator: a dashboard must never hold the daemon's stream back.
   */
  events(
    onEvent: (e: StreamEvent) => void,
    o: { lastEventId?: string | null; onControl?: (e: ControlEvent) => void } = {},
  ): { close(): void; done: Promise<void>; opened: Promise<void>; readonly lastEventId: string | null } {
    return this.transport.stream("eventsStream", {}, onEvent, o);
  }

  /** Closes the connection. Calls made after this open a new one. */
  close(): void {
    this.transport.close();
  }
}
