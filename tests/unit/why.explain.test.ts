import { describe, expect, it } from "vitest";
import { explain, explainWaiting, type QueueFacts } from "../../src/queue/why.js";
import type { JobRecord } from "../../src/store/types.js";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const job = (over: Partial<JobRecord>): JobRecord => ({
  id: 5,
  type: "mail",
  payload: {},
  status: "pending",
  progress: 0,
  progressMessage: null,
  attempts: 0,
  maxAttempts: 3,
  runAt: NOW,
  priority: 0,
  uniqueKey: null,
  slot: null,
  result: null,
  error: null,
  errors: [],
  createdAt: NOW,
  startedAt: null,
  finishedAt: null,
  state: null,
  ...over,
});
const facts: QueueFacts = { now: NOW, paused: { all: false, types: new Set() }, progress: 40, slotFree: false, busySlots: 3, concurrency: 3 };

describe("explain", () => {
  it("says where a running job runs and how far it is", () => {
    expect(explain(job({ status: "running", slot: 2, attempts: 2 }), facts)).toEqual({ jobId: 5, code: "running", message: "running in slot 2 (attempt 2/3), 40% done" });
  });

  it("tells a quarantined failure from an ordinary one", () => {
    const finishedAt = NOW;
    expect(explain(job({ status: "failed", finishedAt, error: "quarantined: killed its worker 3 times" }), facts)).toMatchObject({ code: "quarantined" });
    expect(explain(job({ status: "failed", finishedAt, attempts: 1, error: "boom" }), facts)).toEqual({ jobId: 5, code: "failed", message: "finished: failed after 1 attempt: boom" });
  });

  it("puts a pause before anything else a pending job waits for", () => {
    const later = job({ runAt: NOW + 60_000 });
    expect(explain(later, { ...facts, paused: { all: true, types: new Set() } })).toMatchObject({ code: "queue_paused" });
    expect(explain(later, { ...facts, paused: { all: false, types: new Set(["mail"]) } })).toMatchObject({ code: "type_paused" });
  });

  it("tells backing off after a failure from scheduled", () => {
    const until = NOW + 2000;
    const backing = job({ runAt: until, attempts: 1, error: "smtp down", errors: [{ attempt: 1, message: "smtp down", permanent: false, at: NOW }] });
    expect(explain(backing, facts)).toEqual({ jobId: 5, code: "backing_off", until: "2026-06-01T12:00:02.000Z", message: "backing off until 2026-06-01T12:00:02.000Z after attempt 1 failed: smtp down" });
    expect(explain(job({ runAt: until }), facts)).toMatchObject({ code: "scheduled", until: "2026-06-01T12:00:02.000Z" });
  });

  it("asks for the queue position of a due job, and then says whether it starts or waits", () => {
    const due = job({});
    expect(explain(due, facts)).toBe("ahead");
    expect(explainWaiting(due, facts, 4)).toEqual({ jobId: 5, code: "waiting_for_slot", ahead: 4, message: "waiting for a slot: 4 ahead of it, 3 of 3 slots busy" });
    expect(explainWaiting(due, { ...facts, slotFree: true }, 0)).toMatchObject({ code: "starting", ahead: 0 });
  });
});
