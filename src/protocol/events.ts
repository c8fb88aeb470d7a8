// The typed event map. The daemon's bus emits these, the SSE streams serialise them
// (`event: <name>` / `data: <json>`), and the client and tests parse them back.

import type { JobHead, JobLogLine } from "./types.js";

export interface EventMap {
  /** A running job reported progress. Pushed at once; persisted coalesced. */
  "job:progress": { jobId: number; progress: number; message: string | null; at: string };
  /**
   * A job changed status (enqueued, started, retrying, finished). Carries the job's head:
   * no payload, result or errors (read the job for those), so an event costs little
   * whatever the job holds.
   */
  "job:status": { job: JobHead };
  /** A line the job's handler logged. */
  "job:log": JobLogLine;
}

export type EventName = keyof EventMap;
export type StreamEvent = { [K in EventName]: { type: K; data: EventMap[K] } }[EventName];

/**
 * What a stream says about itself (docs/protocol.md, "Event streams"): `reset`, the
 * Last-Event-ID it was opened with cannot be resumed (the current state follows); `dropped`,
 * the reader fell out of the resume window and the daemon ends the stream (reconnect with
 * lastEventId to resume, or start over).
 */
export type ControlEvent = { type: "reset"; data: { reason: string } } | { type: "dropped"; data: { reason: string; lastEventId: string } };

export const EVENT_NAMES: readonly EventName[] = ["job:progress", "job:status", "job:log"];
