// Jobs as the protocol shows them: the store's records (times in epoch ms) made into wire
// jobs (times as ISO strings), with the live progress of a running attempt when the engine
// knows one newer than the stored one.

import type { Job, JobSummary } from "../protocol/types.js";
import type { JobRecord, JobSummaryRecord } from "../store/types.js";

/** What the engine knows of a running attempt that the store may not have yet. */
export interface LiveView {
  progress: number;
  message: string | null;
  slot: number;
  /** When its turn began (null while it waits in its slot). */
  record: { startedAt: number | null };
}

// A batch's jobs share a few timestamps (created, runAt): the last conversions are kept.
const isoMs = [NaN, NaN, NaN, NaN];
const isoText = ["", "", "", ""];
let isoNext = 0;
const iso = (ms: number): string => {
  for (let i = 0; i < 4; i++) if (isoMs[i] === ms) return isoText[i]!;
  const text = new Date(ms).toISOString();
  isoMs[isoNext] = ms;
  isoText[isoNext] = text;
  isoNext = (isoNext + 1) % 4;
  return text;
};

export function toWire(r: JobRecord, live?: LiveView): Job {
  return {
    id: r.id,
    type: r.type,
    payload: r.payload,
    status: r.status,
    progress: live ? live.progress : r.progress,
    progressMessage: live ? live.message : r.progressMessage,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    runAt: iso(r.runAt),
    priority: r.priority,
    uniqueKey: r.uniqueKey,
    slot: live ? live.slot : r.slot,
    result: r.result,
    error: r.error,
    errors: r.errors.map((e) => ({ ...e, at: iso(e.at) })),
    createdAt: iso(r.createdAt),
    startedAt: startedAt(r, live),
    finishedAt: r.finishedAt === null ? null : iso(r.finishedAt),
  };
}

function startedAt(r: { startedAt: number | null }, live?: LiveView): string | null {
  const at = live ? live.record.startedAt : r.startedAt;
  return at === null ? null : iso(at);
}

/** A list's summary on the wire (times as ISO strings). */
export function toWireSummary(r: JobSummaryRecord, live?: LiveView): JobSummary {
  return {
    ...r,
    progress: live ? live.progress : r.progress,
    progressMessage: live ? live.message : r.progressMessage,
    slot: live ? live.slot : r.slot,
    runAt: iso(r.runAt),
    createdAt: iso(r.createdAt),
    startedAt: startedAt(r, live),
    finishedAt: r.finishedAt === null ? null : iso(r.finishedAt),
  };
}
