// The typed event map. The daemon's bus emits these, the SSE streams serialise them
// (`event: <name>` / `data: <json>`), and the client and tests parse them back.

import type { Job, JobLogLine } from "./types.js";

export interface EventMap {
  /** A running job reported progress. Pushed at once; persisted coalesced. */
  "job:progress": { jobId: number; progress: number; message: string | null; at: string };
  /** A job changed status (enqueued, started, retrying, finished). Carries the whole job. */
  "job:status": { job: Job };
  /** A line the job's handler logged. */
  "job:log": JobLogLine;
}

export type EventName = keyof EventMap;
export type StreamEvent = { [K in EventName]: { type: K; data: EventMap[K] } }[EventName];

export const EVENT_NAMES: readonly EventName[] = ["job:progress", "job:status", "job:log"];
