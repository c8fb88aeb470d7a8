// The scheduler's pure rules (src/scheduler/policy.ts): the no-overlap key and how long fired
// slots are remembered.

import { describe, expect, it } from "vitest";
import { runsPruneCutoff, runsPruneEvery, scheduledJob, scheduleKey } from "../../src/scheduler/policy.js";
import type { NewJob } from "../../src/store/types.js";

const job: NewJob = { type: "report", payload: { board: "default" }, runAt: 1000, priority: 2, maxAttempts: 5, uniqueKey: null };

describe("the scheduler's policy", () => {
  it("every job of one schedule carries the same key, and each schedule its own", () => {
    expect(scheduleKey("nightly")).toBe("schedule:nightly");
    expect(scheduleKey("nightly")).toBe(scheduleKey("nightly"));
    expect(scheduleKey("nightly")).not.toBe(scheduleKey("nightly2"));
  });

  it("a schedule's job is the prepared job under the schedule's key, nothing else changed", () => {
    expect(scheduledJob("nightly", job)).toEqual({ ...job, uniqueKey: "schedule:nightly" });
    // A key the job came with (there is none today) gives way to the schedule's.
    expect(scheduledJob("nightly", { ...job, uniqueKey: "mine" }).uniqueKey).toBe("schedule:nightly");
    expect(job.uniqueKey).toBeNull(); // not mutated
  });

  it("fired slots are kept for the retention", () => {
    expect(runsPruneCutoff(10_000_000, 7 * 86_400_000)).toBe(10_000_000 - 7 * 86_400_000);
    expect(runsPruneCutoff(5000, 0)).toBe(5000);
  });

  it("pruning runs every tenth of the retention, at least every hour and at most every minute", () => {
    expect(runsPruneEvery(7 * 86_400_000)).toBe(3_600_000);
    expect(runsPruneEvery(10 * 60_000)).toBe(60_000);
    expect(runsPruneEvery(0)).toBe(60_000);
    expect(runsPruneEvery(5 * 3_600_000)).toBe(1_800_000);
  });
});
