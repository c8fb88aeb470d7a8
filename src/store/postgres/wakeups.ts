// Wake-ups between the daemons of one database (SCALE-OUT.md §9.1, principles 4 and 6):
//
// - After a commit that makes jobs claimable (an enqueue, a retry, a requeue, a rescue, a
//   schedule's firing), the store sends NOTIFY tw_jobs, as a statement of its own on the pool,
//   never inside the writing transaction: a NOTIFY in a transaction takes a database-wide lock
//   at commit and serialises every commit behind it (measured in SCALE-OUT.md §8.4: single-row
//   inserts 3x slower). At most one per NOTIFY_EVERY_MS per store (one daemon): the first at
//   once, the rest of a burst in one at the end of the window.
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
/** A store sends at most one tw_jobs NOTIFY per this many ms. */
export const NOTIFY_EVERY_MS = 50;

export interface Wakeups {
  readonly enabled: boolean;
  /** This store's token: the payload of its tw_jobs notifications. */
  readonly token: string;
  /** Jobs became claimable by a commit that returned: tell the other daemons (debounced). */
  jobsClaimable(): void;
  /** No NOTIFY after this (the store is closing). */
  close(): void;
}

export function pgWakeups(pool: pg.Pool, enabled: boolean, clock: () => number = Date.now): Wakeups {
  const token = randomUUID();
  let last = -Infinity;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const send = () => {
    timer = null;
    if (closed) return;
    last = clock();
    // A NOTIFY that fails (the database is away) is not retried: the poll covers it.
    pool.query({ name: "tw_notify_jobs", text: "SELECT pg_notify($1, $2)", values: [JOBS_CHANNEL, token] }).catch(() => {});
  };
  return {
    enabled,
    token,
    jobsClaimable() {
      if (!enabled || closed || timer) return;
      const wait = last + NOTIFY_EVERY_MS - clock();
      if (wait <= 0) send();
      else timer = setTimeout(send, wait);
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
