// The wake-up pieces of the PostgreSQL store that need no database: the debounce of tw_jobs
// NOTIFYs (at most one per NOTIFY_EVERY_MS per store: the first at once, a burst's rest in one
// at the end of the window) and the reading of a tw_control payload (only the named node's).

import { describe, expect, it } from "vitest";
import type pg from "pg";
import { NOTIFY_EVERY_MS, pgWakeups } from "../../src/store/postgres/wakeups.js";
import { cancelNoticeFor } from "../../src/store/postgres/nodes.js";

/** A pool that records the NOTIFYs sent through it. */
function recordingPool() {
  const sent: { at: number; values: unknown[] }[] = [];
  const pool = { query: async (q: { values: unknown[] }) => void sent.push({ at: performance.now(), values: q.values }) } as unknown as pg.Pool;
  return { pool, sent };
}

describe("pgWakeups", () => {
  it("sends the first at once and the rest of a burst as one at the end of the window, with the store's token", async () => {
    const { pool, sent } = recordingPool();
    const w = pgWakeups(pool, true);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) w.jobsClaimable();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.values).toEqual(["tw_jobs", w.token]);
    await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS * 3));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at - t0).toBeGreaterThanOrEqual(NOTIFY_EVERY_MS - 5);
    // Quiet for a window: the next is sent at once again.
    w.jobsClaimable();
    expect(sent).toHaveLength(3);
    w.close();
  });

  it("sends nothing when disabled or closed", async () => {
    const off = recordingPool();
    pgWakeups(off.pool, false).jobsClaimable();
    const closed = recordingPool();
    const w = pgWakeups(closed.pool, true);
    w.jobsClaimable();
    w.jobsClaimable(); // queued for the end of the window ...
    w.close(); // ... and dropped
    await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS * 2));
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
