import { describe, expect, it } from "vitest";
import { AHEAD_BUDGET_MS, AHEAD_MAX, FAST_STUCK_MS, planPlacement, type PlacementInput, type SlotView } from "../../src/queue/placement.js";

const NOW = 1_000_000;
const empty = (n: number, warm = false): SlotView => ({ n, warm, jobs: [] });
const busy = (n: number, ...jobs: { type: string; begun?: number | null }[]): SlotView => ({
  n,
  warm: false,
  jobs: jobs.map((j, i) => ({ type: j.type, begun: j.begun === undefined ? (i === 0 ? NOW : null) : j.begun })),
});

function plan(slots: SlotView[], runTimes: Record<string, number>, over: Partial<PlacementInput> = {}) {
  return planPlacement({ now: NOW, slots, runTimes: new Map(Object.entries(runTimes)), kindOf: () => "thread:256", fastWorkers: 8, ...over });
}

describe("planPlacement", () => {
  it("sends slow and unmeasured jobs to empty slots only, a warm one first, and stops when none is left", () => {
    const p = plan([busy(1, { type: "slow" }), empty(2), empty(3, true)], { slow: 50 });
    expect(p.limit).toBe(2);
    expect(p.place("slow")).toEqual({ slot: 3, ahead: false });
    expect(p.place("slow")).toEqual({ slot: 2, ahead: false });
    expect(p.place("slow")).toBeNull();
  });

  it("puts fast jobs behind a busy fast slot, within the time budget, before waking an empty one", () => {
    // A fast type at 0.5 ms: the busy slot holds 0.5 ms of work, so 7 more fit in 4 ms.
    const p = plan([busy(1, { type: "fast" }), empty(2)], { fast: 0.5 });
    expect(p.limit).toBe(1 + 7 + 8);
    const places = Array.from({ length: 7 }, () => p.place("fast"));
    expect(places.every((x) => x !== null && "slot" in x && x.slot === 1 && x.ahead)).toBe(true);
    // Slot 1 full; it held 0.5 ms when the tick began (keeping up): no second worker is woken.
    expect(p.place("fast")).toBeNull();
  });

  it("wakes an empty slot for fast jobs when the busy worker is lagging, then fills that one", () => {
    // Slot 1 already holds 3 ms of work (over half the budget): its worker is not keeping up.
    const p = plan([busy(1, { type: "fast" }, { type: "fast" }, { type: "fast" }), empty(2)], { fast: 1 });
    expect(p.place("fast")).toEqual({ slot: 1, ahead: true });
    expect(p.place("fast")).toEqual({ slot: 2, ahead: false });
    expect(p.place("fast")).toEqual({ slot: 2, ahead: true });
  });

  it("wakes no worker for fast jobs beyond fastWorkers", () => {
    const p = plan([busy(1, { type: "fast" }, { type: "fast" }, { type: "fast" }, { type: "fast" }), empty(2)], { fast: 1 }, { fastWorkers: 1 });
    expect(p.place("fast")).toBeNull();
    // A slow job still takes the empty slot.
    expect(p.place("slow")).toEqual({ slot: 2, ahead: false });
  });

  it("puts nothing behind a slow job, nor behind a fast one that is overdue", () => {
    const p = plan([busy(1, { type: "slow" }), busy(2, { type: "fast", begun: NOW - AHEAD_BUDGET_MS - 1 })], { slow: 50, fast: 0.1 });
    expect(p.limit).toBe(0);
    expect(p.place("fast")).toBeNull();
  });

  it("counts a fast worker stuck past FAST_STUCK_MS as free for the fastWorkers cap", () => {
    const stuck = busy(1, { type: "fast", begun: NOW - FAST_STUCK_MS - 1 });
    const p = plan([stuck, empty(2)], { fast: 0.1 }, { fastWorkers: 1 });
    expect(p.place("fast")).toEqual({ slot: 2, ahead: false });
  });

  it("keeps jobs of another worker kind apart", () => {
    const p = plan([busy(1, { type: "fast" }), empty(2)], { fast: 0.5, other: 0.5 }, { kindOf: (t) => (t === "other" ? "process:512" : "thread:256") });
    expect(p.place("other")).toEqual({ slot: 2, ahead: false });
  });

  it("sends one probe for an unmeasured type, and makes the next wait for it", () => {
    const p = plan([empty(1), empty(2)], {});
    expect(p.place("new")).toEqual({ slot: 1, ahead: false });
    expect(p.place("new")).toEqual({ waitMs: AHEAD_BUDGET_MS });
    // A probe that began 3 ms ago: the wait is what is left of the budget.
    const later = plan([busy(1, { type: "new", begun: NOW - 3 }), empty(2)], {});
    expect(later.place("new")).toEqual({ waitMs: 1 });
    // Past the budget, the probe was slow: the next one takes an empty slot.
    const slowProbe = plan([busy(1, { type: "new", begun: NOW - AHEAD_BUDGET_MS }), empty(2)], {});
    expect(slowProbe.place("new")).toEqual({ slot: 2, ahead: false });
  });

  it("hands at most AHEAD_MAX jobs to one slot", () => {
    const p = plan([busy(1, { type: "tiny" })], { tiny: 0.0001 });
    expect(p.limit).toBe(AHEAD_MAX - 1);
    let placed = 0;
    while (p.place("tiny") !== null) placed++;
    expect(placed).toBe(AHEAD_MAX - 1);
  });
});

/** What a store does with the claim's budgets (store/types.ts ClaimLimits), for due jobs of these types in order. */
function claimTypes(p: ReturnType<typeof plan>, due: string[]): string[] {
  const left = new Map(Object.entries(p.claim.budgets));
  const taken: string[] = [];
  for (const type of due.slice(0, p.claim.limit)) {
    const names = p.claim.draws[type] ?? p.claim.otherTypes;
    if (names.some((n) => !((left.get(n) ?? 0) > 0))) break;
    for (const n of names) left.set(n, left.get(n)! - 1);
    taken.push(type);
  }
  return taken;
}

describe("planPlacement's claim budgets", () => {
  it("take as many jobs of one type as can be placed, no more", () => {
    const cases: [SlotView[], Record<string, number>, string][] = [
      [[busy(1, { type: "fast" }), empty(2)], { fast: 0.5 }, "fast"],
      [[busy(1, { type: "fast" }, { type: "fast" }, { type: "fast" }), empty(2)], { fast: 1 }, "fast"],
      [[busy(1, { type: "fast" }), empty(2), empty(3)], { fast: 0.1 }, "fast"],
      [[busy(1, { type: "tiny" })], { tiny: 0.0001 }, "tiny"],
      [[busy(1, { type: "slow" }), empty(2), empty(3)], { slow: 50 }, "slow"],
      [[empty(1), empty(2)], {}, "new"],
      [[empty(1), empty(2), empty(3)], {}, "gone"],
    ];
    for (const [slots, runTimes, type] of cases) {
      const counting = plan(slots, runTimes);
      const taken = claimTypes(counting, Array.from({ length: 1000 }, () => type));
      const placing = plan(slots, runTimes);
      let placeable = 0;
      for (;;) {
        const p = placing.place(type);
        if (p === null || !("slot" in p)) break;
        placeable++;
      }
      expect({ type, taken: taken.length }).toEqual({ type, taken: placeable });
    }
  });

  it("claim none of a type whose probe is under way, and say when to look again", () => {
    const p = plan([busy(1, { type: "new", begun: NOW - 1 }), empty(2)], {});
    expect(claimTypes(p, ["new", "slow"])).toEqual([]);
    expect(p.probeWaitMs).toBe(AHEAD_BUDGET_MS - 1);
    expect(plan([empty(1)], {}).probeWaitMs).toBeNull();
  });

  it("let slow and unmeasured types share the empty slots, with one probe per claim", () => {
    const p = plan([empty(1), empty(2)], { slow: 50 });
    expect(claimTypes(p, ["slow", "new", "slow"])).toEqual(["slow", "new"]);
    // One probe per claim, whatever the type (not measured yet, or unknown here).
    expect(claimTypes(plan([empty(1), empty(2), empty(3)], {}), ["new", "gone"])).toEqual(["new"]);
    // The draws list only the measured and probing types: any number of registered types costs nothing.
    expect(Object.keys(p.claim.draws)).toEqual(["slow"]);
  });

  it("stop at the first job that does not fit, so none overtakes it", () => {
    const p = plan([busy(1, { type: "fast" }), empty(2)], { fast: 0.5, slow: 50 }, { fastWorkers: 1 });
    expect(claimTypes(p, ["slow", "slow", "fast"])).toEqual(["slow"]);
  });
});
