import { describe, expect, it } from "vitest";
import { claimMore } from "../../src/store/claim-budget.js";

describe("claimMore", () => {
  it("takes jobs while the write has run less than the budget", () => {
    expect(claimMore(5, 7.9, 8)).toBe(true);
    expect(claimMore(5, 8, 8)).toBe(false);
    expect(claimMore(200, 30, 8)).toBe(false);
  });
  it("always takes the first job, even on a thread so slow that it spends the budget", () => {
    expect(claimMore(0, 50, 8)).toBe(true);
    expect(claimMore(0, 0, 0)).toBe(true);
    expect(claimMore(1, 0, 0)).toBe(false);
  });
  it("has no bound without a budget", () => {
    expect(claimMore(10_000, 1e9, undefined)).toBe(true);
  });
});
