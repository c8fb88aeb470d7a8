import { describe, expect, it } from "vitest";
import { backoffMs } from "../../src/queue/backoff.js";

describe("backoffMs", () => {
  const opts = { baseMs: 1000, capMs: 60_000, jitter: 0.2 };
  it("doubles from the base with no jitter drawn", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, opts, () => 0))).toEqual([1000, 2000, 4000, 8000, 16000]);
  });
  it("adds at most the jitter fraction", () => {
    expect(backoffMs(1, opts, () => 1)).toBe(1200);
    expect(backoffMs(3, opts, () => 0.5)).toBe(4400);
  });
  it("never exceeds the cap, even with jitter or a huge attempt number", () => {
    expect(backoffMs(7, opts, () => 0)).toBe(60_000);
    expect(backoffMs(6, opts, () => 1)).toBe(38_400);
    expect(backoffMs(6, { ...opts, capMs: 35_000 }, () => 1)).toBe(35_000);
    expect(backoffMs(10_000, opts, () => 1)).toBe(60_000);
  });
});
