// What a daemon does after a claim whose answer was lost (src/queue/reconcile.ts): whether the
// claim may have been applied, and which of the jobs running for it in the store it must give
// back (those it does not hold).

import { describe, expect, it } from "vitest";
import { outcomeUnknown, unknownClaims } from "../../src/queue/reconcile.js";
import { StoreError } from "../../src/store/errors.js";

describe("outcomeUnknown", () => {
  it("a store error that says nothing was applied: known", () => {
    expect(outcomeUnknown(new StoreError("unavailable", "canceling statement due to statement timeout"))).toBe(false);
    expect(outcomeUnknown(new StoreError("unreachable", "no answer within 4 s", { outcome: "none" }))).toBe(false);
  });
  it("a store error whose write may have been applied, or any other error: unknown", () => {
    expect(outcomeUnknown(new StoreError("unreachable", "no answer within 4 s", { outcome: "unknown" }))).toBe(true);
    expect(outcomeUnknown(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(outcomeUnknown("a string thrown")).toBe(true);
  });
});

describe("unknownClaims", () => {
  const running = [
    { id: 1, attempt: 1 },
    { id: 2, attempt: 3 },
    { id: 5, attempt: 1 },
  ];
  it("gives back what the daemon does not hold, in the store's order", () => {
    const holds = (id: number, attempt: number) => id === 2 && attempt === 3;
    expect(unknownClaims(running, holds)).toEqual([
      { id: 1, attempt: 1 },
      { id: 5, attempt: 1 },
    ]);
  });
  it("a job held under another attempt number is not held (the store's attempt is one this daemon never got)", () => {
    expect(unknownClaims([{ id: 2, attempt: 4 }], (id, attempt) => id === 2 && attempt === 3)).toEqual([{ id: 2, attempt: 4 }]);
  });
  it("nothing to give back when it holds everything, or nothing runs for it", () => {
    expect(unknownClaims(running, () => true)).toEqual([]);
    expect(unknownClaims([], () => false)).toEqual([]);
  });
});
