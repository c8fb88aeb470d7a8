// choosePlan: whether a tick needs a new placement plan, may use the last one, or needs none.
import { describe, expect, it } from "vitest";
import { AHEAD_FAST_MS, choosePlan, idlePool, type PoolState } from "../../src/queue/placement.js";

/** A pool of slots, each busy or not and warm or not, with the run times' change count. */
function pool(slots: { busy?: boolean; warm?: boolean }[], runTimesChanges = 0, fastest: number | null = null): PoolState {
  return {
    slots: slots.length,
    busy: (n) => slots[n - 1]!.busy === true,
    warm: (n) => slots[n - 1]!.warm === true,
    runTimesChanges,
    anyFast: () => fastest !== null && fastest <= AHEAD_FAST_MS,
  };
}

describe("choosePlan", () => {
  it("uses the last plan while the pool is idle as it was: the same slots, the same warm ones, no new run time", () => {
    const made = idlePool(pool([{ warm: true }, {}, {}], 4))!;
    expect(choosePlan(pool([{ warm: true }, {}, {}], 4), made)).toBe("last");
  });

  it("plans again when anything the idle plan read has changed", () => {
    const made = idlePool(pool([{ warm: true }, {}, {}], 4))!;
    // A job in a slot (the plan would read the time and the job), ...
    expect(choosePlan(pool([{ warm: true, busy: true }, {}, {}], 4), made)).toBe("new");
    // ... another warm slot, a worker retired, ...
    expect(choosePlan(pool([{ warm: true }, { warm: true }, {}], 4), made)).toBe("new");
    expect(choosePlan(pool([{}, {}, {}], 4), made)).toBe("new");
    // ... a run time learnt, another number of slots.
    expect(choosePlan(pool([{ warm: true }, {}, {}], 5), made)).toBe("new");
    expect(choosePlan(pool([{ warm: true }, {}], 4), made)).toBe("new");
    expect(choosePlan(pool([{ warm: true }, {}, {}, {}], 4), made)).toBe("new");
  });

  it("keeps no idle plan of a pool with a job in any slot", () => {
    expect(idlePool(pool([{}, { busy: true }]))).toBeNull();
    expect(choosePlan(pool([{}, {}]), null)).toBe("new");
  });

  it("needs no plan when every slot is busy and no measured type is fast: nothing could be placed", () => {
    expect(choosePlan(pool([{ busy: true }, { busy: true }], 0, null), null)).toBe("none");
    expect(choosePlan(pool([{ busy: true }, { busy: true }], 0, 50), null)).toBe("none");
    // A fast type may wait behind a busy slot: a plan says how many.
    expect(choosePlan(pool([{ busy: true }, { busy: true }], 0, AHEAD_FAST_MS), null)).toBe("new");
    // One empty slot is enough for a plan.
    expect(choosePlan(pool([{ busy: true }, {}], 0, null), null)).toBe("new");
  });
});
