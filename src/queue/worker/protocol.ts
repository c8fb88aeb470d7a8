// The only messages that cross between the pool (daemon thread) and a worker: a thread, or
// a child process (over its IPC channel, as JSON) for a job type with isolation "process".

import type { Json } from "../../protocol/types.js";
import type { JobContext } from "../../jobs/define.js";
import type { StoreLocation } from "../../store/index.js";

export interface WorkerData {
  modules: string[];
  /** Where the worker opens its read-only board port (ctx.board), on a handler's first read. */
  store: StoreLocation;
  paths: JobContext["paths"];
  settings: JobContext["settings"];
}

export type ToWorker =
  /** A worker process's first message: what a thread gets as workerData. */
  | { t: "init"; data: WorkerData }
  /** Run these jobs after the ones already handed over (a worker runs its jobs one at a time, in order). */
  | { t: "start"; jobs: StartMessage[] }
  /** The checkpoint numbered seq is committed (or could not be). */
  | { t: "checkpointed"; jobId: number; seq: number; error: string | null }
  /** Abort the job if it runs; if it waits in this worker's queue, end it without running it. */
  | { t: "cancel"; jobId: number; reason: string };

export interface StartMessage {
  jobId: number;
  attempt: number;
  type: string;
  payload: Json;
  state: Json | null;
}

export type FromWorker =
  | { t: "ready" }
  | { t: "progress"; jobId: number; attempt: number; progress: number; message: string | null }
  | { t: "log"; jobId: number; attempt: number; message: string }
  | { t: "checkpoint"; jobId: number; attempt: number; seq: number; state: Json }
  /** ms: how long the handler ran (the engine's guide to how many jobs of a type to hand over at once). */
  | { t: "done"; jobId: number; attempt: number; result: Json; ms: number }
  | { t: "failed"; jobId: number; attempt: number; message: string; permanent: boolean; ms: number }
  /** The worker could not load its job modules: it is useless, and says why. */
  | { t: "broken"; message: string };
