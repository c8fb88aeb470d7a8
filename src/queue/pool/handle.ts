// What a slot needs of its worker, a thread (thread.ts) or a child process (process.ts): the
// slot's logic (handing over jobs, ends, replacing a dead worker) is the same for both.

import type { Readable } from "node:stream";
import type { Isolation } from "../../jobs/define.js";
import type { FromWorker, ToWorker } from "../worker/protocol.js";

/** What a worker is started with; jobs of one kind may wait behind each other in one worker. */
export interface WorkerKind {
  isolation: Isolation;
  memoryMb: number;
}

export const kindKey = (k: WorkerKind): string => `${k.isolation}:${k.memoryMb}`;

export interface WorkerHandle {
  readonly stdout: Readable;
  readonly stderr: Readable;
  post(m: ToWorker): void;
  onMessage(cb: (m: FromWorker) => void): void;
  /** Called once when the worker is gone, with what happened to it, for the job that was in it. */
  onExit(cb: (why: string) => void): void;
  /** Stops it; resolves once it is gone. */
  stop(): Promise<void>;
  /** A handler's error, with what the worker knows about it (a process names its memory cap). */
  explain(message: string): string;
}
