// The wake-up pieces of the PostgreSQL store that need no database: tw_jobs NOTIFYs go one in
// flight at a time per store (the first of a burst at once, the rest as one more as soon as it
// returns, never after a timer) and the reading of a tw_control payload (only the named node's).

import { describe, expect, it } from "vitest";
import type pg from "pg";
import { pgWakeups } from "../../src/store/postgres/wakeups.js";
import { cancelNoticeFor } from "../../src/store/postgres/nodes.js";

/** A pool that records the NOTIFYs sent through it; each stays in flight until answered (answer()), or fails (fail()). */
function recordingPool() {
  const sent: { values: unknown[] }[] = [];
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const pool = {
    query: (q: { values: unknown[] }) =>
      new Promise<void>((resolve, reject) => {
        sent.push({ values: q.values });
        waiting.push({ resolve, reject });
      }),
  } as unknown as pg.Pool;
  /** Lets the oldest NOTIFY in flight return, and its follow-up (if any) go out. */
  const settle = async (ok: boolean) => {
    const w = waiting.shift()!;
    if (ok) w.resolve();
    else w.reject(new Error("the database is away"));
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { pool, sent, inFlight: () => waiting.length, answer: () => settle(true), fail: () => settle(false) };
}

describe("pgWakeups", () => {
  it("sends the first at once, the rest of a burst as one more when it returns, with the store's token", async () => {
    const p = recordingPool();
    const w = pgWakeups(p.pool, true);
    for (let i = 0; i < 100; i++) w.jobsClaimable();
    expect(p.sent).toHaveLength(1);
    expect(p.sent[0]!.values).toEqual(["tw_jobs", w.token]);
    await p.answer();
    // What came while the first was in flight goes at once after it, as one.
    expect(p.sent).toHaveLength(2);
    expect(p.inFlight()).toBe(1);
    await p.answer();
    expect(p.sent).toHaveLength(2);
    expect(p.inFlight()).toBe(0);
    // Nothing in flight: the next is sent at once, however soon after the last.
    w.jobsClaimable();
    expect(p.sent).toHaveLength(3);
    // A failed NOTIFY is not retried, but does not hold the next one back.
    w.jobsClaimable();
    await p.fail();
    expect(p.sent).toHaveLength(4);
    await p.answer();
    w.close();
  });

  it("sends nothing when disabled or closed", async () => {
    const off = recordingPool();
    pgWakeups(off.pool, false).jobsClaimable();
    const closed = recordingPool();
    const w = pgWakeups(closed.pool, true);
    w.jobsClaimable();
    w.jobsClaimable(); // to follow the first ...
    w.close(); // ... and dropped
    await closed.answer();
    w.jobsClaimable();
    expect(off.sent).toHaveLength(0);
    expect(closed.sent).toHaveLength(1);
  });
});

describe("cancelNoticeFor", () => {
  it("reads a notice for the node it names, and nothing else", () => {
    const payload = JSON.stringify({ cancel: 7, node: "A", attempt: 2, graceLeftMs: 2999.5 });
    expect(cancelNoticeFor(payload, "A")).toEqual({ id: 7, attempt: 2, graceLeftMs: 2999.5 });
    expect(cancelNoticeFor(payload, "B")).toBeNull();
    expect(cancelNoticeFor(JSON.stringify({ cancel: "7", node: "A", attempt: 2, graceLeftMs: 1 }), "A")).toBeNull();
    expect(cancelNoticeFor("not json", "A")).toBeNull();
    expect(cancelNoticeFor(undefined, "A")).toBeNull();
  });
});
