// The scheduler's rules, pure and written once for every store: what a firing asks the store
// for is data built here; the store only keeps its promises (one row per slot, unique live
// keys), which the database enforces.
//
// - No overlap: every job of a schedule carries the schedule's unique key, so while one run is
//   pending or running the store inserts no other (it hands back the live one: "skipped").
// - A slot is fired at most once, whoever tries: the store records (schedule, slot) once and
//   refuses a slot at or before the last one handled.
// - The record of fired slots is kept for as long as finished jobs are, then pruned; a pruned
//   slot stays refused (it is at or before the schedule's last slot).

import type { NewJob } from "../store/types.js";

/** The unique key shared by every job of one schedule: two runs of it never overlap. */
export const scheduleKey = (name: string): string => `schedule:${name}`;

/** The job a firing of `name` enqueues: the prepared job, under the schedule's key. */
export function scheduledJob(name: string, job: NewJob): NewJob {
  return { ...job, uniqueKey: scheduleKey(name) };
}

/** Fired slots are recorded for as long as finished jobs are kept (config retention). */
export function runsPruneCutoff(now: number, retentionMs: number): number {
  return now - retentionMs;
}

/** How often housekeeping prunes fired slots: a tenth of the retention, between a minute and an hour. */
export function runsPruneEvery(retentionMs: number): number {
  return Math.min(3_600_000, Math.max(60_000, Math.floor(retentionMs / 10)));
}
