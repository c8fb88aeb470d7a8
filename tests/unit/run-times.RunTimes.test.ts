import { describe, expect, it } from "vitest";
import { RunTimes } from "../../src/queue/run-times.js";

describe("RunTimes", () => {
  it("counts a type as measured from its second run, which replaces the cold first one", () => {
    const t = new RunTimes();
    t.record("a", 100);
    expect(t.mean("a")).toBeUndefined();
    t.record("a", 2);
    expect(t.mean("a")).toBe(2);
    t.record("a", 12);
    expect(t.mean("a")).toBe(4); // 2 × 0.8 + 12 × 0.2
    expect([...t.measured]).toEqual([["a", 4]]);
  });

  it("saves the measured means and loads them back for known types only", () => {
    const t = new RunTimes();
    t.record("a", 0.12345);
    t.record("a", 0.12345);
    t.record("b", 1);
    expect(t.toJson()).toEqual({ a: 0.123 });
    const back = new RunTimes();
    back.load({ a: 0.123, gone: 1, bad: "x", negative: -1 }, (type) => type !== "gone");
    expect([...back.measured]).toEqual([["a", 0.123]]);
    back.load(null, () => true);
    back.load([1, 2], () => true);
    expect(back.measured.size).toBe(1);
  });
});
