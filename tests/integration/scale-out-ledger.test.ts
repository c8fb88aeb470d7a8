// The oracle of the scale-out tests: the ledger checker (tests/helpers/ledger.ts) on ledgers
// written by hand, one per kind of fault it must see, and the ledger job type on a real
// daemon (SQLite: the job type itself needs no PostgreSQL).
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkLedger, checkSlots, overlapMs, overlapsBetweenJobs, readLedger, LEDGER_JOBS, type FinalJob, type LedgerEntry, type SlotRun } from "../helpers/ledger.js";
import { FIXTURE_JOBS, startDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

const line = (job: number, attempt: number, event: LedgerEntry["event"], at: number, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({ job, attempt, node: "n0", pid: 100, event, at, ...extra });
const done = (id: number, attempts = 1): FinalJob => ({ id, status: "complete", attempts });

describe("checkLedger", () => {
  it("a clean ledger: every job started and ended once", () => {
    const r = checkLedger([line(1, 1, "start", 0), line(2, 1, "start", 1, { node: "n1", pid: 200 }), line(1, 1, "end", 5), line(2, 1, "end", 6, { node: "n1", pid: 200 })], [done(1), done(2)], { expected: [1, 2] });
    expect(r.violations).toEqual([]);
    expect(r).toMatchObject({ starts: 2, ends: 2, lateEnds: [], byNode: { n0: 1, n1: 1 }, maxOverlap: { ms: 0, job: null } });
  });

  it("a job lost: not complete, or unknown, or complete without the work of its last attempt", () => {
    const r = checkLedger([line(1, 1, "start", 0), line(3, 1, "start", 0), line(3, 1, "end", 1)], [{ id: 1, status: "pending", attempts: 1 }, done(3, 2)], { expected: [1, 2, 3] });
    expect(r.violations).toEqual([
      "job 1 lost: pending after 1 attempt(s), not complete",
      "job 2 lost: the daemons do not know it",
      "job 3 is complete at attempt 2, but the ledger has no end of that attempt",
    ]);
  });

  it("a job done twice: two ends fail the default; allowed ends are reported as late", () => {
    const entries = [line(1, 1, "start", 0), line(1, 1, "end", 10), line(1, 2, "start", 20, { node: "n1", pid: 200 }), line(1, 2, "end", 30, { node: "n1", pid: 200 })];
    const strict = checkLedger(entries, [done(1, 2)], { expected: [1] });
    expect(strict.violations).toEqual(["job 1 was done to its end 2 times (at most 1 allowed): attempt 1 on n0, attempt 2 on n1"]);
    const lenient = checkLedger(entries, [done(1, 2)], { expected: [1], maxEndsPerJob: 2 });
    expect(lenient.violations).toEqual([]);
    expect(lenient.lateEnds).toEqual([{ job: 1, attempt: 1, node: "n0" }]);
  });

  it("one attempt given out twice, and an end of an attempt the queue never gave out", () => {
    const r = checkLedger([line(1, 1, "start", 0), line(1, 1, "start", 1, { node: "n1", pid: 200 }), line(1, 1, "end", 2), line(1, 3, "start", 3), line(1, 3, "end", 4)], [done(1, 1)], { maxEndsPerJob: 5 });
    expect(r.violations).toContain("job 1 attempt 1 started 2 times (on n0 pid 100, n1 pid 200): one attempt was given out twice");
    expect(r.violations).toContain("job 1: attempt 3 ended, but the queue gave out only 1 attempt(s)");
  });

  it("overlap: a killed attempt ran until its death; the bound decides", () => {
    const entries = [line(1, 1, "start", 0, { tick: 250 }), line(1, 1, "tick", 250), line(1, 2, "start", 400, { node: "n1", pid: 200, tick: 0 }), line(1, 2, "end", 2000, { node: "n1", pid: 200 })];
    const deaths = [{ pid: 100, at: 900 }];
    const r = checkLedger(entries, [done(1, 2)], { expected: [1], deaths });
    expect(r.violations).toEqual(["job 1: attempts 1 (n0, died) and 2 (n1, end) ran at the same time for 500 ms (bound 0 ms)"]);
    expect(r.maxOverlap).toEqual({ ms: 500, job: 1 });
    expect(checkLedger(entries, [done(1, 2)], { expected: [1], deaths, overlapBoundMs: 2000 }).violations).toEqual([]);
  });

  it("an attempt that vanished (no end, no abort, no death) is taken to run until its last line plus the slack", () => {
    const entries = [line(1, 1, "start", 0, { tick: 250 }), line(1, 1, "tick", 250), line(1, 2, "start", 300, { node: "n1", pid: 200 }), line(1, 2, "end", 5000, { node: "n1", pid: 200 })];
    const r = checkLedger(entries, [done(1, 2)], { expected: [1], tickSlackMs: 1000 });
    expect(r.attempts.find((a) => a.attempt === 1)).toMatchObject({ how: "vanished", stop: 1250 });
    expect(r.maxOverlap.ms).toBe(950);
  });

  it("a frozen attempt did not run while it wrote nothing; what it did after it woke counts", () => {
    // Attempt 1 ticks until 1,000, is frozen (SIGSTOP) until 9,000, ticks once and aborts.
    const a1 = [line(1, 1, "start", 0, { tick: 250 }), line(1, 1, "tick", 500), line(1, 1, "tick", 1000), line(1, 1, "tick", 9000), line(1, 1, "abort", 9050)];
    // Attempt 2 runs 4,000 → stop without a pause (no ticks written here: taken as running throughout).
    const a2 = (stop: number) => [line(1, 2, "start", 4000, { node: "n1", pid: 200, tick: 0 }), line(1, 2, "end", stop, { node: "n1", pid: 200 })];
    expect(checkLedger([...a1, ...a2(8000)], [done(1, 2)], { expected: [1] }).maxOverlap.ms).toBe(0);
    expect(checkLedger([...a1, ...a2(12_000)], [done(1, 2)], { expected: [1] }).maxOverlap.ms).toBe(50);
    // A job that writes no ticks (a spin) is taken to run from start to stop, whatever the gaps.
    const spin = [line(1, 1, "start", 0, { tick: 0 }), line(1, 1, "end", 9000), line(1, 2, "start", 4000, { node: "n1", pid: 200, tick: 0 }), line(1, 2, "end", 5000, { node: "n1", pid: 200 })];
    expect(checkLedger(spin, [done(1, 2)], { maxEndsPerJob: 2 }).maxOverlap.ms).toBe(1000);
  });

  it("overlapMs sums the shared time of two sets of segments", () => {
    expect(overlapMs([[0, 10], [20, 30]], [[5, 25]])).toBe(10);
    expect(overlapMs([[0, 10]], [[10, 20]])).toBe(0);
  });

  it("readLedger: lines in order; a cut line is an error naming the file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-ledger-"));
    try {
      const file = join(dir, "ledger.jsonl");
      expect(readLedger(file)).toEqual([]);
      writeFileSync(file, `${JSON.stringify(line(1, 1, "start", 0))}\n`);
      expect(readLedger(file)).toEqual([line(1, 1, "start", 0)]);
      appendFileSync(file, '{"job":1,"att');
      expect(() => readLedger(file)).toThrow(`${file}:2: not a ledger line`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("checkSlots (a schedule's fired slots)", () => {
  const T = Date.parse("2026-12-03T10:00:00Z");
  const run = (s: number, outcome: SlotRun["outcome"], job: number | null): SlotRun => ({ slot: T + s * 1000, outcome, job });

  it("every slot once, enqueued or skipped for the live run: clean", () => {
    const r = checkSlots([run(2, "skipped", 1), run(0, "enqueued", 1), run(1, "skipped", 1), run(3, "enqueued", 2)], { periodMs: 1000 });
    expect(r).toEqual({ violations: [], first: T, last: T + 3000, slots: 4, enqueued: 2, skipped: 2, gaps: [] });
  });

  it("a gap, a slot twice, a slot off the period, an undecided slot", () => {
    const r = checkSlots([run(0, "enqueued", 1), run(3, "enqueued", 2), run(3, "enqueued", 3), run(3.5, "enqueued", 4), run(4.5, null, null)], { periodMs: 1000 });
    expect(r.gaps).toEqual([{ after: T, missing: 2 }]);
    expect(r.violations).toEqual([
      "gap: 2 slot(s) missing after 2026-12-03T10:00:00.000Z",
      "slot 2026-12-03T10:00:03.000Z has 2 rows: fired twice",
      "slot 2026-12-03T10:00:03.500Z is 500 ms after the previous one, not a multiple of the period (1000 ms)",
      "slot 2026-12-03T10:00:04.500Z is not decided (outcome null, job null)",
    ]);
  });

  it("one job for two slots, and a slot skipped for a job that was not the live run", () => {
    const r = checkSlots([run(0, "enqueued", 1), run(1, "enqueued", 2), run(2, "skipped", 1), run(3, "enqueued", 2)], { periodMs: 1000 });
    expect(r.violations).toEqual([
      "slot 2026-12-03T10:00:02.000Z was skipped for job 1, but the live run then was job 2 (enqueued for 2026-12-03T10:00:01.000Z)",
      "job 2 was enqueued for two slots: 2026-12-03T10:00:01.000Z and 2026-12-03T10:00:03.000Z",
    ]);
  });
});

describe("overlapsBetweenJobs (runs of one schedule)", () => {
  it("back to back is fine; a run starting before the previous ended is reported; one without an end too", () => {
    const entries = [line(1, 1, "start", 0), line(1, 1, "end", 100), line(2, 1, "start", 100), line(2, 1, "end", 200), line(3, 1, "start", 150, { node: "n1" }), line(3, 1, "end", 300, { node: "n1" })];
    expect(overlapsBetweenJobs(entries, [1, 2])).toEqual([]);
    expect(overlapsBetweenJobs(entries, [1, 2, 3])).toEqual(["job 2 attempt 1 (n0) and job 3 attempt 1 (n1) ran at the same time for 50 ms"]);
    expect(overlapsBetweenJobs(entries, [1, 2, 3], 50)).toEqual([]);
    expect(overlapsBetweenJobs([line(4, 1, "start", 0)], [4])).toEqual(["job 4 attempt 1 (n0) has no end in the ledger"]);
  });
});

describe("the ledger job type", () => {
  it("appends start, ticks, progress and end; a cancel is an abort; ignoring the signal it keeps going", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-ledger-"));
    const file = join(dir, "ledger.jsonl");
    const d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, LEDGER_JOBS] }, env: { TEAMWORK_TEST_LEDGER: file, TEAMWORK_TEST_NODE: "solo" } });
    try {
      const { job: quick } = await d.client.call("jobsEnqueue", { type: "ledger", payload: {} });
      const { job: slow } = await d.client.call("jobsEnqueue", { type: "ledger", payload: { ms: 600, tickMs: 100, progressMs: 100 } });
      const { job: cancelled } = await d.client.call("jobsEnqueue", { type: "ledger", payload: { ms: 60_000, tickMs: 100 } });
      const { job: stubborn } = await d.client.call("jobsEnqueue", { type: "ledger", payload: { ms: 1500, tickMs: 100, ignoreAbort: true }, maxAttempts: 1 });
      await waitFor(async () => (await d.client.call("jobsGet", { id: slow.id })).job.status === "complete", { timeoutMs: 15_000 });
      const progress = (await d.client.call("jobsGet", { id: slow.id })).job;
      expect(progress.result).toEqual({ node: "solo", pid: d.pid, attempt: 1 });
      await waitFor(() => readLedger(file).some((l) => l.job === cancelled.id && l.event === "tick"), { what: "the job to be cancelled to tick" });
      await waitFor(() => readLedger(file).some((l) => l.job === stubborn.id && l.event === "tick"), { what: "the stubborn job to tick" });
      await d.client.call("jobsCancel", { id: cancelled.id });
      await d.client.call("jobsCancel", { id: stubborn.id });
      await waitFor(() => readLedger(file).some((l) => l.job === cancelled.id && l.event === "abort"), { what: "the abort line" });
      const lines = readLedger(file);
      const of = (id: number) => lines.filter((l) => l.job === id);
      expect(of(quick.id).map((l) => l.event)).toEqual(["start", "end"]);
      expect(of(quick.id)[0]).toMatchObject({ attempt: 1, node: "solo", pid: d.pid, tick: 0 });
      expect(of(slow.id)[0]).toMatchObject({ event: "start", tick: 100 });
      expect(of(slow.id).filter((l) => l.event === "tick").length).toBeGreaterThanOrEqual(2);
      expect(of(slow.id).at(-1)!.event).toBe("end");
      expect(of(cancelled.id).at(-1)).toMatchObject({ event: "abort" });
      // The stubborn one wrote no abort: it ignored the signal (its worker is ended after the grace).
      expect(of(stubborn.id).some((l) => l.event === "abort")).toBe(false);
      expect(of(stubborn.id).every((l) => l.node === "solo")).toBe(true);
    } finally {
      await d.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without a ledger file it fails at once, saying what it needs", async () => {
    const d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, LEDGER_JOBS] }, env: { TEAMWORK_TEST_LEDGER: "" } });
    try {
      const { job } = await d.client.call("jobsEnqueue", { type: "ledger", payload: {} });
      const failed = await waitFor(async () => {
        const j = (await d.client.call("jobsGet", { id: job.id })).job;
        return j.status === "failed" ? j : null;
      });
      expect(failed.attempts).toBe(1);
      expect(failed.error).toContain("the ledger job needs a ledger file");
    } finally {
      await d.cleanup();
    }
  });
});
