import { describe, expect, it } from "vitest";
import { toJobSpec } from "../../src/client/teamwork.js";
import { abortError } from "../../src/client/watch.js";
import { TeamworkError } from "../../src/lib/errors.js";

describe("toJobSpec", () => {
  it("sends only what was given", () => {
    expect(toJobSpec("noop", undefined)).toEqual({ type: "noop" });
    expect(toJobSpec("noop", null, {})).toEqual({ type: "noop", payload: null });
  });

  it("takes a delay in ms or as a duration, and a start time as a Date or text", () => {
    expect(toJobSpec("noop", {}, { delay: 1500 })).toEqual({ type: "noop", payload: {}, delayMs: 1500 });
    expect(toJobSpec("noop", {}, { delay: "1h30m" }).delayMs).toBe(5_400_000);
    expect(toJobSpec("noop", {}, { runAt: new Date(Date.UTC(2026, 11, 1, 9)) }).runAt).toBe("2026-12-01T09:00:00.000Z");
    expect(toJobSpec("noop", {}, { runAt: "2026-12-01T09:00:00Z", uniqueKey: "k", priority: 5, maxAttempts: 2 })).toEqual({
      type: "noop",
      payload: {},
      runAt: "2026-12-01T09:00:00Z",
      uniqueKey: "k",
      priority: 5,
      maxAttempts: 2,
    });
  });

  it("refuses a duration it cannot read as invalid_input, naming the option", () => {
    const err = (() => {
      try {
        toJobSpec("noop", {}, { delay: "10" });
      } catch (e) {
        return e;
      }
    })() as TeamworkError;
    expect([err.code, err.status, err.message]).toEqual(["invalid_input", 400, 'delay: duration "10" has no unit; write it like 10s, 10m or 10h']);
  });
});

describe("abortError", () => {
  it("is timeout for AbortSignal.timeout's reason, aborted otherwise, and the reason itself when it is a TeamworkError", () => {
    const c = new AbortController();
    c.abort();
    expect(abortError(c.signal, "waiting").code).toBe("aborted");
    const t = new AbortController();
    t.abort(new DOMException("The operation timed out.", "TimeoutError"));
    expect(abortError(t.signal, "waiting").code).toBe("timeout");
    const own = new TeamworkError("timeout", "job 3 did not finish within 1s");
    const o = new AbortController();
    o.abort(own);
    expect(abortError(o.signal, "waiting")).toBe(own);
  });
});
