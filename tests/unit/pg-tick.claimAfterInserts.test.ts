// Which ticks claim after committing their writes on PostgreSQL (src/store/postgres/jobs.ts
// claimAfterInserts): those that store new jobs and claim; a drain's ticks (ends and claims)
// stay one transaction.

import { describe, expect, it } from "vitest";
import { claimAfterInserts } from "../../src/store/postgres/jobs.js";
import type { ClaimLimits, NewJob } from "../../src/store/types.js";

const job = { type: "noop" } as NewJob;
const claim = (limit: number): ClaimLimits => ({ limit, pausedTypes: [], budgets: { any: limit }, draws: {}, otherTypes: ["any"] });

describe("claimAfterInserts", () => {
  it("new jobs and a claim: claim after the writes commit", () => {
    expect(claimAfterInserts({ inserts: [job], claim: claim(3) })).toBe(true);
  });
  it("no new jobs, no claim, or a claim of nothing: one transaction as before", () => {
    expect(claimAfterInserts({ inserts: [], claim: claim(3) })).toBe(false);
    expect(claimAfterInserts({ inserts: [job], claim: null })).toBe(false);
    expect(claimAfterInserts({ inserts: [job], claim: claim(0) })).toBe(false);
  });
});
