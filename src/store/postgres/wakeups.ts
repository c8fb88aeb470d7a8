// Wake-ups between the daemons of one database (SCALE-OUT.md §9.1, principles 4 and 6):
//
// - After a commit that makes jobs claimable (an enqueue, a retry, a requeue, a rescue, a
//   schedule's firing), the store sends NOTIFY tw_jobs, as a statement of its own on the pool,
//   never inside the writing transaction: a NOTIFY in a transaction takes a database-wide lock
//   at commit and holds it through the commit's WAL flush, serialising every such commit
//   (measured in SCALE-OUT.md §8.4: single-row inserts 3x slower). Alone, it writes no WAL, so
//   its own commit waits for no flush (measured here: 0.08–0.12 ms a statement).
// - One in flight per store (one daemon): the first of a burst is sent at once, and the jobs
//   made claimable while it is on its way are told by one more as soon as it returns. A
//   wake-up waits at most one NOTIFY's round trip, never a timer: a 50 ms window (the first at
//   once, the rest of a burst at its end) held the wake-ups of one-by-one enqueues a few ms
//   apart for up to 50 ms, and enqueue→start across nodes with them (bench/scale-out.mjs
//   latency, 2 daemons, one job every 5 ms, load 1.5–2.7 on 2 cores: p50 21–25 ms with the
//   window, 8–12 ms with one in flight). The rate stays bounded: a daemon's enqueues commit in
//   ticks (group commit), at most one NOTIFY per tick and per round trip, and a listener
//   coalesces what it hears into its next tick, which claims only for free slots.
// - Every node LISTENs on tw_jobs and tw_control on its control connection (nodes.ts) and
//   wakes its engine on what it hears. The payload of tw_jobs is the sending store's token,
//   so that a daemon ignores its own (its engine knew at once).
// - A cancel is told on tw_control by the statement that records it (jobs.ts requestCancel):
//   rare, so the commit lock does not matter, and it is sent only if the request was recorded.
//
// Correctness never depends on a NOTIFY: a lost one costs the claim poll (CLAIM_POLL_MS) or
// the next heartbeat (cancels). `enabled: false` sends nothing and listens to nothing (the
// databaseNotify setting; tests of the poll alone).

import { randomUUID } from "node:crypto";
import type pg from "pg";

export const JOBS_CHANNEL = "tw_jobs";
export const CONTROL_CHANNEL = "tw_control";

export interface Wakeups {
  readonly enabled: boolean;
  /** This store's token: the payload of its tw_jobs notifications. */
  readonly token: string;
  /** Jobs became claimable by a commit that returned: tell the other daemons (one NOTIFY in flight at a time). */
  jobsClaimable(): void;
  /** No NOTIFY after this (the store is closing). */
  close(): void;
}

export function pgWakeups(pool: pg.Pool, enabled: boolean): Wakeups {
  const token = randomUUID();
  let inFlight = false;
  /** Jobs became claimable while a NOTIFY was on its way: one more follows it. */
  let more = false;
  let closed = false;
  const send = () => {
    inFlight = true;
    more = false;
    // A NOTIFY that fails (the database is away) is not retried: the poll covers it.
    pool
      .query({ name: "tw_notify_jobs", text: "SELECT pg_notify($1, $2)", values: [JOBS_CHANNEL, token] })
      .catch(() => {})
      .finally(() => {
        inFlight = false;
        if (more && !closed) send();
      });
  };
  return {
    enabled,
    token,
    jobsClaimable() {
      if (!enabled || closed) return;
      if (inFlight) more = true;
      else send();
    },
    close() {
      closed = true;
    },
  };
}
