// `jobs why`: why a job is (not) running, in one line and a code, as a pure function of the
// job and what the engine knows of the queue. For a due pending job the answer needs its
// place in the queue, which the store counts: explain() asks for it, explainWaiting() uses it.

import type { JobWhy } from "../protocol/types.js";
import type { JobRecord } from "../store/types.js";

/** What the engine knows of the queue when the question is asked. */
export interface QueueFacts {
  now: number;
  paused: { all: boolean; types: ReadonlySet<string> };
  /** The progress of the job's running attempt as the engine knows it (live, or as stored). */
  progress: number;
  /** A slot is free and the engine is claiming (not stopping). */
  slotFree: boolean;
  busySlots: number;
  concurrency: number;
}

const at = (ms: number) => new Date(ms).toISOString();

/** The answer, or "ahead" when it depends on how many due jobs will be claimed before this one. */
export function explain(r: JobRecord, q: QueueFacts): JobWhy | "ahead" {
  const head = { jobId: r.id };
  switch (r.status) {
    case "running":
      return { ...head, code: "running", message: `running in slot ${r.slot} (attempt ${r.attempts}/${r.maxAttempts}), ${q.progress}% done` };
    case "complete":
      return { ...head, code: "complete", message: `finished: complete at ${at(r.finishedAt!)}` };
    case "cancelled":
      return { ...head, code: "cancelled", message: `finished: cancelled by user at ${at(r.finishedAt!)}` };
    case "failed":
      return r.error?.startsWith("quarantined")
        ? { ...head, code: "quarantined", message: `finished: ${r.error}` }
        : { ...head, code: "failed", message: `finished: failed after ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}: ${r.error}` };
    case "pending":
      break;
  }
  if (q.paused.all) return { ...head, code: "queue_paused", message: "queue paused: nothing starts until `teamwork queue resume`" };
  if (q.paused.types.has(r.type)) return { ...head, code: "type_paused", message: `queue paused for ${r.type}: resume with \`teamwork queue resume ${r.type}\`` };
  if (r.runAt > q.now) {
    const last = r.errors.at(-1);
    if (r.attempts > 0 && r.error && last) {
      return { ...head, code: "backing_off", until: at(r.runAt), message: `backing off until ${at(r.runAt)} after attempt ${last.attempt} failed: ${last.message}` };
    }
    return { ...head, code: "scheduled", until: at(r.runAt), message: `scheduled for ${at(r.runAt)}` };
  }
  return "ahead";
}

/** A due pending job, with `ahead` due jobs to be claimed before it. */
export function explainWaiting(r: JobRecord, q: QueueFacts, ahead: number): JobWhy {
  const head = { jobId: r.id };
  if (q.slotFree) return { ...head, code: "starting", ahead, message: "due, and a slot is free: starting now" };
  return { ...head, code: "waiting_for_slot", ahead, message: `waiting for a slot: ${ahead} ahead of it, ${q.busySlots} of ${q.concurrency} slots busy` };
}
