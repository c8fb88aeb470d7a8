import { describe, expect, it } from "vitest";
import { FOLLOW_MAX_ROUND_TRIP_MS, FollowingClock, ManualClock, offsetFrom } from "../../src/lib/clock.js";

describe("following another clock (the database's)", () => {
  it("takes a reading as made at the midpoint of the exchange", () => {
    expect(offsetFrom(1_000_030_000, 1_000_000_000, 1_000_000_010)).toBe(29_995);
    expect(offsetFrom(999_970_000, 1_000_000_000, 1_000_000_010)).toBe(-30_005);
    expect(offsetFrom(1_000_000_005, 1_000_000_000, 1_000_000_010)).toBe(0);
  });

  it("follows a clock 30 s ahead and one 30 s behind, within half a round trip; its timers stay the base's", () => {
    const base = new ManualClock(1_000_000_000);
    const c = new FollowingClock(base);
    expect(c.now()).toBe(1_000_000_000);
    expect(c.follow(1_000_030_004, c.now(), c.now() + 8)).toBe(true); // the other clock is 30 s ahead
    expect(Math.abs(c.now() - (base.now() + 30_000))).toBeLessThanOrEqual(4);
    // A later reading corrects the earlier one rather than adding to it.
    const sent = c.now();
    base.advance(10);
    expect(c.follow(base.now() - 30_000 - 5, sent, c.now())).toBe(true); // now 30 s behind
    expect(Math.abs(c.now() - (base.now() - 30_000))).toBeLessThanOrEqual(5);
    let fired = false;
    c.setTimer(() => (fired = true), 100);
    base.advance(99);
    expect(fired).toBe(false);
    base.advance(1);
    expect(fired).toBe(true);
  });

  it("ignores a slow exchange (it says little) and one that ran backwards", () => {
    const base = new ManualClock(5_000);
    const c = new FollowingClock(base);
    expect(c.follow(999_999, 5_000, 5_000 + FOLLOW_MAX_ROUND_TRIP_MS + 1)).toBe(false);
    expect(c.follow(999_999, 5_010, 5_000)).toBe(false);
    expect(c.offsetMs).toBe(0);
    expect(c.now()).toBe(5_000);
  });
});
