// The contract of a job handler. A module listed in `jobModules` default-exports one
// JobDefinition or an array of them. This contract is documented in docs/jobs.md and kept
// stable: only optional members are ever added.

import type { Json } from "../protocol/types.js";
import type { JobType, PayloadOf, ResultOf } from "../protocol/job-types.js";
import type { BoardPort } from "../store/board-port.js";

export interface JobContext {
  jobId: number;
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  /** Fires when the job is cancelled or times out; stop promptly when it does. */
  signal: AbortSignal;
  /** Reports progress, 0–100, with an optional message. Pushed to watchers at once. */
  progress(percent: number, message?: string): void;
  log(message: string): void;
  /** What the last checkpoint of this job recorded (from this or an earlier attempt), or null. */
  state: Json | null;
  /**
   * Records durable progress: resolves once `state` is committed, so work done before the
   * call is never redone by a retry that reads ctx.state.
   */
  checkpoint(state: Json): Promise<void>;
  /**
   * The board, read-only: one task, a board through one consistent snapshot, task events
   * after a cursor (src/store/board-port.ts). The only way a handler reads the board's data.
   */
  board: BoardPort;
  /**
   * Files kept in the store, the same from every node: uploads to read, this job's
   * artifacts to write. The way a job's inputs and outputs stay reachable whichever host
   * runs it (docs/jobs.md, "Files").
   */
  files: JobFiles;
  /**
   * Folders of this daemon's home. They are on the host that runs the job: what a job writes
   * there, other nodes of a team cannot read (write artifacts instead: ctx.files).
   */
  paths: { home: string; reports: string; uploads: string; uploadsTmp: string; thumbs: string; outbox: string };
  /** Settings from the daemon's configuration that jobs may need. */
  settings: JobSettings;
}

/** A file as ctx.files describes it. */
export interface JobFile {
  name: string;
  mediaType: string;
  size: number;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
}

export interface JobFiles {
  /**
   * An upload's bytes, whole, with its original name; null if there is no such upload, or
   * if it was made before files were kept in the store (its copy is then a file on the
   * host that took it: Attachment.path).
   */
  upload(id: number): Promise<(JobFile & { bytes: Buffer }) | null>;
  /**
   * Stores `bytes` (a string is written as UTF-8) as this job's artifact `name`, replacing
   * one an earlier attempt put under that name; resolves once it is committed. Anyone can
   * then fetch it, from any node (`teamwork jobs artifact ID NAME`), until the job is pruned.
   * The media type defaults to the one the name's extension suggests. Throws a permanent
   * error past `maxBytes` (nothing is stored) or for a bad name, and an error if this
   * attempt is no longer the job's running one (it was cancelled, timed out, or taken over).
   */
  putArtifact(name: string, bytes: Buffer | Uint8Array | string, mediaType?: string): Promise<JobFile>;
  /** The largest file putArtifact takes (config fileMaxBytes). */
  readonly maxBytes: number;
}

export interface JobSettings {
  /** The largest file kept in the store (config fileMaxBytes): uploads and artifacts. */
  fileMaxBytes: number;
  smtpUrl: string | null;
  mailFrom: string;
  /** Files in uploads/tmp older than this (ms) are removed by `cleanup`. */
  cleanupMaxAgeMs: number;
  digestRecipients: string[];
  /** Send a digest even when nothing happened. */
  digestSendEmpty: boolean;
}

export interface Lookup {
  boardExists(name: string): Promise<boolean>;
  taskExists(id: number): Promise<boolean>;
}

export type Isolation = "thread" | "process";
export const ISOLATIONS: readonly Isolation[] = ["thread", "process"];

export interface JobDefinition<P = Json, R = Json> {
  type: string;
  run(payload: P, ctx: JobContext): Promise<R> | R;
  /**
   * Runs in the daemon at enqueue time: throw to refuse the payload (the message reaches
   * the user as a 400). `lookup` answers questions about the board that can be known then.
   */
  validate?(payload: unknown, lookup: Lookup): void | Promise<void>;
  timeoutMs?: number;
  maxAttempts?: number;
  /**
   * Memory limit of the worker that runs this type, in MiB: V8's heap limit in a thread; with
   * isolation "process", a cap the kernel enforces on the whole process (native memory too).
   */
  memoryMb?: number;
  /**
   * Where its jobs run. "thread" (the default): a worker thread of the daemon, cheap, but
   * native memory and crashes in native code are the daemon's. "process": a child process
   * under a memory cap, so a crash, a leak or a decompression bomb fails only that job.
   * The config key jobIsolation overrides it per type.
   */
  isolation?: Isolation;
  backoff?: { baseMs?: number; capMs?: number };
}

/** An error that retrying cannot fix (a corrupt image stays corrupt): the job fails at once. */
export class PermanentJobError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = "PermanentJobError";
  }
}

/**
 * Only for names the JobTypes map does not know. A known type that reaches this overload has
 * a payload or result that differ from the map's, and the compiler's error says so.
 */
type UnmappedType<T extends string> = string extends T ? T : T extends JobType ? `${T}: its run() must take and return the types declared for it in JobTypes` : T;

/**
 * Declares a job type. For a type in the JobTypes map (protocol/job-types.ts; applications
 * extend it by declaration merging), the payload and the result are the map's: a handler
 * whose `run` returns something else does not compile, so it cannot drift from what
 * producers enqueue (`client.jobs.enqueue`). Other types give their types explicitly
 * (`defineJob<{ path: string }>(…)`), or default to JSON.
 */
export function defineJob<const T extends JobType>(def: JobDefinition<PayloadOf<T>, ResultOf<T>> & { type: T }): JobDefinition<PayloadOf<T>, ResultOf<T>>;
export function defineJob<P = Json, R = Json, const T extends string = string>(def: JobDefinition<P, R> & { type: UnmappedType<T> }): JobDefinition<P, R>;
export function defineJob(def: JobDefinition<unknown, unknown>): JobDefinition<unknown, unknown> {
  return def;
}
