import { describe, expect, it } from "vitest";
import { attemptOutcome, type EndedAttempt, type OutcomePolicy } from "../../src/queue/outcome.js";

const policy: OutcomePolicy = { now: 10_000, quarantineAfter: 3, backoff: { baseMs: 1000, capMs: 60_000 }, rand: () => 0 };
const job = { id: 7, errors: [], maxAttempts: 3 };
const fail = (over: Partial<{ message: string; permanent: boolean; crashed: boolean }> = {}) => ({ ok: false as const, message: "boom", permanent: false, crashed: false, ...over });
const ended = (over: Partial<EndedAttempt>): EndedAttempt => ({ job, attempt: 1, end: fail(), stopped: null, ...over });

describe("attemptOutcome", () => {
  it("completes with the result", () => {
    expect(attemptOutcome(ended({ end: { ok: true, result: { n: 1 }, ms: 2 } }), policy)).toEqual({ outcome: "complete", result: { n: 1 } });
  });

  it("retries a failure on the backoff while attempts are left, then fails", () => {
    expect(attemptOutcome(ended({ attempt: 1 }), policy)).toEqual({ outcome: "retry", error: "boom", runAt: 11_000, crashed: false });
    expect(attemptOutcome(ended({ attempt: 2 }), policy)).toEqual({ outcome: "retry", error: "boom", runAt: 12_000, crashed: false });
    expect(attemptOutcome(ended({ attempt: 3 }), policy)).toEqual({ outcome: "failed", error: "boom", permanent: false, crashed: false });
  });

  it("adds the jitter drawn, up to 20%", () => {
    expect(attemptOutcome(ended({}), { ...policy, rand: () => 1 })).toMatchObject({ outcome: "retry", runAt: 11_200 });
  });

  it("fails a permanent error at once", () => {
    expect(attemptOutcome(ended({ end: fail({ permanent: true }) }), policy)).toEqual({ outcome: "failed", error: "boom", permanent: true, crashed: false });
  });

  it("quarantines a job whose attempts killed their worker quarantineAfter times", () => {
    const crashedBefore = { id: 7, maxAttempts: 10, errors: [1, 2].map((a) => ({ attempt: a, message: "exit", permanent: false, at: 0, crashed: true })) };
    const o = attemptOutcome(ended({ job: crashedBefore, attempt: 3, end: fail({ crashed: true, message: "exited with code 7" }) }), policy);
    expect(o).toEqual({
      outcome: "failed",
      permanent: true,
      crashed: true,
      error: "quarantined: killed its worker 3 times (last: exited with code 7); `teamwork jobs retry 7` runs it again",
    });
    // Two crashes only: a retry, marked crashed.
    const once = { ...crashedBefore, errors: crashedBefore.errors.slice(1) };
    expect(attemptOutcome(ended({ job: once, attempt: 2, end: fail({ crashed: true }) }), policy)).toMatchObject({ outcome: "retry", crashed: true });
  });

  it("a timeout is a failure with the watchdog's message, never permanent nor a crash", () => {
    const o = attemptOutcome(ended({ end: fail({ crashed: true, permanent: true, message: "terminated" }), stopped: { reason: "timeout", message: "timed out after 5s" } }), policy);
    expect(o).toEqual({ outcome: "retry", error: "timed out after 5s", runAt: 11_000, crashed: false });
  });

  it("a cancel is cancelled whatever the end (a result returned all the same is kept), a shutdown or a job that never began goes back uncounted", () => {
    expect(attemptOutcome(ended({ end: { ok: true, result: 1, ms: 1 }, stopped: { reason: "cancel", message: "cancelled by user" } }), policy)).toEqual({ outcome: "cancelled", result: 1 });
    expect(attemptOutcome(ended({ end: fail({ message: "stopped on abort" }), stopped: { reason: "cancel", message: "cancelled by user" } }), policy)).toEqual({ outcome: "cancelled" });
    expect(attemptOutcome(ended({ stopped: { reason: "shutdown", message: "daemon shutting down" } }), policy)).toEqual({ outcome: "requeue" });
    expect(attemptOutcome(ended({ end: { ok: false, notStarted: true, message: "worker died" } }), policy)).toEqual({ outcome: "requeue" });
  });

  it("a job that ended on its own after a stop other than cancel is not complete", () => {
    // Timed out, but its result arrived before the worker was killed: the timeout wins.
    const o = attemptOutcome(ended({ attempt: 3, end: { ok: true, result: 1, ms: 1 }, stopped: { reason: "timeout", message: "timed out after 1s" } }), policy);
    expect(o).toEqual({ outcome: "failed", error: "timed out after 1s", permanent: false, crashed: false });
  });
});
