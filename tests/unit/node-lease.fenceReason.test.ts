import { describe, expect, it } from "vitest";
import { fenceAt, fenceReason, HEARTBEAT_MS, LEASE_MS, RESCUE_EVERY_MS, RESCUE_SILENT_MS, SELF_FENCE_MS } from "../../src/queue/node-lease.js";

describe("fenceReason", () => {
  const ok = { renewedAt: 10_000, lost: null, refused: false };

  it("trusts the lease for less than SELF_FENCE_MS after the start of the last good heartbeat", () => {
    expect(fenceReason(ok, 10_000)).toBeNull();
    expect(fenceReason(ok, 10_000 + SELF_FENCE_MS - 1)).toBeNull();
  });

  it("fences once SELF_FENCE_MS have passed without a heartbeat, saying for how long", () => {
    expect(fenceReason(ok, 10_000 + SELF_FENCE_MS)).toBe("no heartbeat succeeded for 2.0 s (the lease may lapse at 3 s)");
    // A frozen process resumes long after: the same verdict, with the real silence.
    expect(fenceReason(ok, 10_000 + 8_400)).toMatch(/for 8\.4 s/);
  });

  it("fences at once on a lost control connection or a refused lease, however fresh the last heartbeat", () => {
    expect(fenceReason({ ...ok, lost: "terminating connection due to idle-session timeout" }, 10_001)).toBe(
      "the control connection was lost (terminating connection due to idle-session timeout)",
    );
    expect(fenceReason({ ...ok, refused: true }, 10_001)).toMatch(/no longer holds this node's lease/);
  });

  it("a clock that went backwards counts as no time passed", () => {
    expect(fenceReason(ok, 5_000)).toBeNull();
  });

  it("fenceAt is where the verdict turns", () => {
    expect(fenceReason(ok, fenceAt(ok.renewedAt) - 1)).toBeNull();
    expect(fenceReason(ok, fenceAt(ok.renewedAt))).not.toBeNull();
  });

  it("the figures keep their order: a live node fences before its lease lapses, and before rescue may act on a lost lock", () => {
    expect(HEARTBEAT_MS).toBeLessThan(SELF_FENCE_MS);
    expect(SELF_FENCE_MS).toBeLessThan(LEASE_MS);
    // A node whose connection broke fences at once or at its next heartbeat (HEARTBEAT_MS): before RESCUE_SILENT_MS.
    expect(HEARTBEAT_MS).toBeLessThan(RESCUE_SILENT_MS);
    // kill -9: rescued within RESCUE_SILENT_MS + a tick; a frozen node within LEASE_MS + a tick: both under 5 s.
    expect(LEASE_MS + RESCUE_EVERY_MS).toBeLessThan(5000);
  });
});
