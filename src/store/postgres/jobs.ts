// The job queue on PostgreSQL is not built yet (issue 14 items 2-3: claims with SKIP LOCKED,
// node leases, fencing). Until it is, every JobStore method refuses with a StoreError that
// says so, rather than half-working. What is here already: the jobs row as a JobRecord, for
// schedules.fire (which inserts a job, or finds the live one).

import type { Json, JobStatus } from "../../protocol/types.js";
import type { JobRecord, JobStore } from "../types.js";
import { StoreError } from "../errors.js";

/** A jobs row as pg returns it (timestamptz as epoch ms, json parsed: connect.ts). */
export interface JobRow {
  id: number;
  type: string;
  payload: Json;
  status: JobStatus;
  progress: number;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number;
  priority: number;
  unique_key: string | null;
  slot: number | null;
  result: Json | null;
  error: string | null;
  errors: JobRecord["errors"];
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  state: Json | null;
}

export const toJobRecord = (r: JobRow): JobRecord => ({
  id: r.id,
  type: r.type,
  payload: r.payload,
  status: r.status,
  progress: r.progress,
  progressMessage: r.progress_message,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  priority: r.priority,
  uniqueKey: r.unique_key,
  slot: r.slot,
  result: r.result,
  error: r.error,
  errors: r.errors,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  state: r.state,
});

export const JOBS_NOT_BUILT = "the job queue is not implemented on the PostgreSQL store yet (issue 14); use a SQLite store to run jobs";

const refuse = async (): Promise<never> => {
  throw new StoreError("unavailable", JOBS_NOT_BUILT);
};

export function pgJobsNotBuilt(): JobStore {
  return {
    tick: refuse,
    get: refuse,
    list: refuse,
    counts: refuse,
    cancelPending: refuse,
    retry: refuse,
    prune: refuse,
    logs: refuse,
    stats: refuse,
    countAhead: refuse,
    rescue: refuse,
    claim: refuse,
  };
}
