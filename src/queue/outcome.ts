// The outcome of an attempt that ended: what is written for it, as a pure function of how it
// ended, why it was stopped (if it was), and the job's history. Retries wait on the
// exponential backoff (backoff.ts); an attempt that killed its worker again and again is a
// poison pill and is quarantined (failed, with a message that says how to run it again).

import type { Json } from "../protocol/types.js";
import type { Finish, JobRecord } from "../store/types.js";
import { backoffMs, type BackoffOptions } from "./backoff.js";
import type { JobEnd } from "./pool/pool.js";

/** Why the engine stopped an attempt before it ended on its own. */
export type StopReason = "cancel" | "timeout" | "shutdown";

/** Jitter added to every retry's delay: up to +20%. */
export const BACKOFF_JITTER = 0.2;

export interface EndedAttempt {
  /** The job as claimed (its errors so far, maxAttempts). */
  job: Pick<JobRecord, "id" | "errors" | "maxAttempts">;
  attempt: number;
  /** How its worker reported the end. */
  end: JobEnd;
  /** Set when the engine stopped it (cancel, timeout, shutdown); with the message it gave. */
  stopped: { reason: StopReason; message: string } | null;
}

export interface OutcomePolicy {
  now: number;
  /** A job whose attempts killed their worker this many times is failed as quarantined. */
  quarantineAfter: number;
  /** The job type's backoff (base and cap; the jitter is BACKOFF_JITTER). */
  backoff: { baseMs: number; capMs: number };
  rand?: () => number;
}

/** What the store is to write for the attempt (a complete carries its result only). */
export type Outcome =
  | { outcome: "complete"; result: Json }
  /** result: the handler returned all the same (it ignored its signal): kept, the job stays cancelled. */
  | { outcome: "cancelled"; result?: Json }
  /** Back to pending without counting the attempt: it never ran, or the daemon is stopping. */
  | { outcome: "requeue" }
  | { outcome: "retry"; error: string; runAt: number; crashed: boolean }
  | { outcome: "failed"; error: string; permanent: boolean; crashed: boolean };

export function attemptOutcome(a: EndedAttempt, policy: OutcomePolicy): Outcome {
  const { end, stopped } = a;
  if (stopped?.reason === "cancel") return end.ok ? { outcome: "cancelled", result: end.result } : { outcome: "cancelled" };
  if (stopped?.reason === "shutdown" || (!end.ok && "notStarted" in end)) return { outcome: "requeue" };
  if (end.ok && stopped === null) return { outcome: "complete", result: end.result };
  const failure = end.ok || "notStarted" in end ? null : end;
  let message = stopped?.reason === "timeout" ? stopped.message : (failure?.message ?? "stopped");
  let permanent = failure !== null && failure.permanent && stopped === null;
  const crashed = failure !== null && failure.crashed && stopped === null;
  // A poison pill: an attempt that kills its worker again and again is stopped on purpose.
  const crashes = a.job.errors.filter((e) => e.crashed).length + (crashed ? 1 : 0);
  if (crashed && crashes >= policy.quarantineAfter) {
    message = `quarantined: killed its worker ${crashes} times (last: ${message}); \`teamwork jobs retry ${a.job.id}\` runs it again`;
    permanent = true;
  }
  if (permanent || a.attempt >= a.job.maxAttempts) return { outcome: "failed", error: message, permanent, crashed };
  const options: BackoffOptions = { ...policy.backoff, jitter: BACKOFF_JITTER };
  return { outcome: "retry", error: message, runAt: policy.now + backoffMs(a.attempt, options, policy.rand), crashed };
}

/** The outcome as the store's Finish for this attempt. */
export function toFinish(id: number, attempt: number, o: Outcome): Finish {
  return { id, attempt, ...o };
}
