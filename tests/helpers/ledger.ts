// The execution ledger (SCALE-OUT.md §10): what the `ledger` job type (tests/fixtures/jobs/
// ledger.mjs) appended while it ran on a cluster's daemons, and the invariant checker over it
// and the jobs' final states. The checker is a pure function: it is given the lines, the
// final states and what the test knows (which processes it killed, and when), and returns
// what it found, so the oracle itself is unit-tested (tests/integration/scale-out-ledger.test.ts).

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { JobStatus } from "../../src/protocol/types.js";

/** The module of the `ledger` job type, for a daemon's jobModules. */
export const LEDGER_JOBS = fileURLToPath(new URL("../fixtures/jobs/ledger.mjs", import.meta.url));

export type LedgerEvent = "start" | "tick" | "end" | "abort" | "signal";

export interface LedgerEntry {
  job: number;
  attempt: number;
  /** The daemon's name in its cluster (TEAMWORK_TEST_NODE), e.g. "n1". */
  node: string;
  /** The process the handler ran in. */
  pid: number;
  event: LedgerEvent;
  /** Wall-clock ms. */
  at: number;
  /** On a start line: the attempt's tick interval (ms), 0 when it writes no ticks (a spin, or no work). */
  tick?: number;
  reason?: string;
}

/** A job's final state, as the daemons report it. */
export interface FinalJob {
  id: number;
  status: JobStatus;
  attempts: number;
}

/** A process the test stopped for good (kill -9) at a known moment: its attempts ran until then at most. */
export interface Death {
  pid: number;
  at: number;
}

/** Reads a ledger file; a line cut short (a writer killed mid-write) is reported, not hidden. */
export function readLedger(file: string): LedgerEntry[] {
  if (!existsSync(file)) return [];
  const out: LedgerEntry[] = [];
  for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (line === "") continue;
    try {
      out.push(JSON.parse(line) as LedgerEntry);
    } catch {
      throw new Error(`${file}:${i + 1}: not a ledger line: ${JSON.stringify(line.slice(0, 200))}`);
    }
  }
  return out;
}

/** One attempt of one job as the ledger saw it. */
export interface AttemptRun {
  job: number;
  attempt: number;
  node: string;
  pid: number;
  start: number;
  /** When it ended, aborted, died, or was last seen (+ tick slack); see checkLedger. */
  stop: number;
  how: "end" | "abort" | "died" | "vanished";
  /**
   * When it was running: from start to stop, less the gaps of more than tickSlackMs between two
   * of its lines (its process was frozen, SIGSTOP, and did nothing then).
   */
  segments: [number, number][];
}

export interface LedgerCheckOptions {
  /** The jobs that must have been done: each complete, its last attempt's work in the ledger. */
  expected?: readonly number[];
  /** Longest time two attempts of one job may run at once (ms); SCALE-OUT.md §10: the self-fence bound, 2 s. Default 0. */
  overlapBoundMs?: number;
  /** How many `end`s (work done to its end) one job may have; more is a job completed twice. Default 1. */
  maxEndsPerJob?: number;
  /** Processes the test killed, and when. */
  deaths?: readonly Death[];
  /**
   * An attempt writes a tick every tickMs (250) while it runs. One with no end, no abort and no
   * known death is taken to have run until its last line plus this; and a gap longer than this
   * between two of its lines is a time it did not run (its process was frozen). Default 1000:
   * well above the tick, so that a loaded machine's late timers are not taken for a freeze.
   */
  tickSlackMs?: number;
}

/**
 * The check for runs where a node fenced itself (partition, freeze, lost sessions): an attempt
 * it cut off may have reached its end before the fence and runs again (at least once), its
 * late end not kept; no two attempts overlap past the self-fence bound (2 s).
 */
export const FENCED_RERUNS: LedgerCheckOptions = { maxEndsPerJob: 2, overlapBoundMs: 2_000 };

export interface LedgerReport {
  violations: string[];
  attempts: AttemptRun[];
  /** Jobs by how many attempts started. */
  starts: number;
  ends: number;
  /** `end`s of attempts that were not the job's last: work done to its end whose result the queue did not keep (at least once). */
  lateEnds: { job: number; attempt: number; node: string }[];
  /** The longest time two attempts of one job ran at once, and which. */
  maxOverlap: { ms: number; job: number | null };
  /** Attempts started per node. */
  byNode: Record<string, number>;
}

/**
 * The invariants of SCALE-OUT.md §10 over a ledger and the final states:
 * - no job lost: every expected job is complete and the ledger has the `end` of the attempt
 *   the queue recorded as its last;
 * - none completed twice: at most maxEndsPerJob ends per job; an attempt never starts twice;
 *   no end of an attempt the queue never gave out;
 * - no two attempts of one job running at once for longer than overlapBoundMs.
 */
export function checkLedger(entries: readonly LedgerEntry[], finals: readonly FinalJob[], opts: LedgerCheckOptions = {}): LedgerReport {
  const bound = opts.overlapBoundMs ?? 0;
  const maxEnds = opts.maxEndsPerJob ?? 1;
  const slack = opts.tickSlackMs ?? 1000;
  const deathOf = new Map<number, number>();
  for (const d of opts.deaths ?? []) deathOf.set(d.pid, Math.min(d.at, deathOf.get(d.pid) ?? Infinity));
  const violations: string[] = [];

  // Group lines by job, then by attempt.
  const byJob = new Map<number, Map<number, LedgerEntry[]>>();
  for (const e of entries) {
    let attempts = byJob.get(e.job);
    if (!attempts) byJob.set(e.job, (attempts = new Map()));
    let lines = attempts.get(e.attempt);
    if (!lines) attempts.set(e.attempt, (lines = []));
    lines.push(e);
  }

  const runs: AttemptRun[] = [];
  const lateEnds: LedgerReport["lateEnds"] = [];
  const byNode: Record<string, number> = {};
  let starts = 0;
  let ends = 0;
  let maxOverlap: LedgerReport["maxOverlap"] = { ms: 0, job: null };
  const finalOf = new Map(finals.map((f) => [f.id, f]));

  for (const [job, attempts] of byJob) {
    const final = finalOf.get(job);
    const jobRuns: AttemptRun[] = [];
    let jobEnds = 0;
    for (const [attempt, lines] of attempts) {
      lines.sort((a, b) => a.at - b.at);
      const startLines = lines.filter((l) => l.event === "start");
      if (startLines.length === 0) {
        violations.push(`job ${job} attempt ${attempt}: lines without a start (${lines.map((l) => l.event).join(", ")})`);
        continue;
      }
      if (startLines.length > 1) violations.push(`job ${job} attempt ${attempt} started ${startLines.length} times (on ${startLines.map((l) => `${l.node} pid ${l.pid}`).join(", ")}): one attempt was given out twice`);
      const first = startLines[0]!;
      starts++;
      byNode[first.node] = (byNode[first.node] ?? 0) + 1;
      const endLine = lines.find((l) => l.event === "end");
      const abortLine = lines.find((l) => l.event === "abort");
      const death = deathOf.get(first.pid);
      let stop: number;
      let how: AttemptRun["how"];
      if (endLine) [stop, how] = [endLine.at, "end"];
      else if (abortLine) [stop, how] = [abortLine.at, "abort"];
      else if (death !== undefined && death >= first.at) [stop, how] = [death, "died"];
      else [stop, how] = [lines[lines.length - 1]!.at + slack, "vanished"];
      const run: AttemptRun = { job, attempt, node: first.node, pid: first.pid, start: first.at, stop, how, segments: first.tick ? segmentsOf(lines, first.at, stop, slack, how === "died") : [[first.at, stop]] };
      jobRuns.push(run);
      runs.push(run);
      if (endLine) {
        ends++;
        jobEnds++;
        if (final && attempt > final.attempts) violations.push(`job ${job}: attempt ${attempt} ended, but the queue gave out only ${final.attempts} attempt(s)`);
        else if (final && !(final.status === "complete" && attempt === final.attempts)) lateEnds.push({ job, attempt, node: first.node });
      }
    }
    if (jobEnds > maxEnds) violations.push(`job ${job} was done to its end ${jobEnds} times (at most ${maxEnds} allowed): ${jobRuns.filter((r) => r.how === "end").map((r) => `attempt ${r.attempt} on ${r.node}`).join(", ")}`);

    // Overlaps between this job's attempts.
    jobRuns.sort((a, b) => a.start - b.start);
    for (let i = 0; i < jobRuns.length; i++) {
      for (let k = i + 1; k < jobRuns.length; k++) {
        const a = jobRuns[i]!;
        const b = jobRuns[k]!;
        const overlap = overlapMs(a.segments, b.segments);
        if (overlap > maxOverlap.ms) maxOverlap = { ms: overlap, job };
        if (overlap > bound) {
          violations.push(
            `job ${job}: attempts ${a.attempt} (${a.node}, ${a.how}) and ${b.attempt} (${b.node}, ${b.how}) ran at the same time for ${Math.round(overlap)} ms (bound ${bound} ms)`,
          );
        }
      }
    }
  }

  for (const id of opts.expected ?? []) {
    const final = finalOf.get(id);
    if (!final) {
      violations.push(`job ${id} lost: the daemons do not know it`);
      continue;
    }
    if (final.status !== "complete") {
      violations.push(`job ${id} lost: ${final.status} after ${final.attempts} attempt(s), not complete`);
      continue;
    }
    const last = byJob.get(id)?.get(final.attempts);
    if (!last?.some((l) => l.event === "end")) violations.push(`job ${id} is complete at attempt ${final.attempts}, but the ledger has no end of that attempt`);
  }
  for (const f of finals) {
    if (f.status === "complete" && !byJob.has(f.id) && !(opts.expected ?? []).includes(f.id)) {
      // A complete job the ledger never saw run: only a fault if it was a ledger job; the
      // caller passes ledger jobs only.
      violations.push(`job ${f.id} is complete but never started in the ledger`);
    }
  }

  return { violations, attempts: runs, starts, ends, lateEnds, maxOverlap, byNode };
}

/** The times an attempt ran: its lines' span split where two lines are more than `slack` apart. */
function segmentsOf(lines: readonly LedgerEntry[], start: number, stop: number, slack: number, toStop: boolean): [number, number][] {
  const times = lines.map((l) => l.at).filter((t) => t >= start && t <= stop);
  const out: [number, number][] = [];
  let from = start;
  let prev = start;
  for (const t of times) {
    if (t - prev > slack) {
      out.push([from, prev]);
      from = t;
    }
    prev = t;
  }
  // The last stretch runs to the stop: an end or an abort (a line), the last line + slack, or a
  // death, which may come long after the last line (a frozen process killed: counted as running
  // until then, the safe side for an overlap check).
  out.push([from, toStop || stop - prev <= slack ? stop : prev + slack]);
  return out;
}

/** The time two sets of segments share. */
export function overlapMs(a: readonly [number, number][], b: readonly [number, number][]): number {
  let total = 0;
  for (const [a0, a1] of a) for (const [b0, b1] of b) total += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
  return total;
}

/** A short text of a report, for a failed assertion's message. */
export function describeReport(r: LedgerReport): string {
  const head = `${r.starts} attempt(s) started, ${r.ends} ended, ${r.lateEnds.length} late end(s), longest overlap ${Math.round(r.maxOverlap.ms)} ms${r.maxOverlap.job === null ? "" : ` (job ${r.maxOverlap.job})`}, by node ${JSON.stringify(r.byNode)}`;
  const shown = r.violations.slice(0, 20);
  return [head, ...shown.map((v) => `  - ${v}`), ...(r.violations.length > shown.length ? [`  … and ${r.violations.length - shown.length} more`] : [])].join("\n");
}

/** One row of a schedule's fired slots (schedule_runs): the slot (ms), what came of it, the job. */
export interface SlotRun {
  slot: number;
  outcome: "enqueued" | "skipped" | null;
  job: number | null;
}

export interface SlotCheckOptions {
  /** The schedule's period (ms): consecutive slots are this far apart. */
  periodMs: number;
}

export interface SlotReport {
  violations: string[];
  /** The first and last slot seen (ms), null when none. */
  first: number | null;
  last: number | null;
  /** Rows, and how many of them enqueued a job or were skipped (the previous run was still live). */
  slots: number;
  enqueued: number;
  skipped: number;
  /** Where slots are missing: after which slot, and how many. */
  gaps: { after: number; missing: number }[];
}

/**
 * The schedule invariants of SCALE-OUT.md §10 over a schedule's fired slots, from its first to
 * its last: one row per slot (no duplicate), every slot of the period in between (no gap), each
 * row decided (enqueued or skipped, with its job), no job enqueued for two slots, and every
 * skipped slot names the run that was live then: the job of the latest enqueued slot before it
 * (one live run per schedule: no overlap).
 */
export function checkSlots(runs: readonly SlotRun[], opts: SlotCheckOptions): SlotReport {
  const period = opts.periodMs;
  const sorted = [...runs].sort((a, b) => a.slot - b.slot);
  const violations: string[] = [];
  const gaps: SlotReport["gaps"] = [];
  const iso = (ms: number) => new Date(ms).toISOString();
  const jobSlot = new Map<number, number>();
  let live: number | null = null;
  let enqueued = 0;
  let skipped = 0;
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i]!;
    const prev = sorted[i - 1];
    if (prev) {
      const step = r.slot - prev.slot;
      if (step === 0) violations.push(`slot ${iso(r.slot)} has ${sorted.filter((x) => x.slot === r.slot).length} rows: fired twice`);
      else if (step % period !== 0) violations.push(`slot ${iso(r.slot)} is ${step} ms after the previous one, not a multiple of the period (${period} ms)`);
      else if (step > period) {
        gaps.push({ after: prev.slot, missing: step / period - 1 });
        violations.push(`gap: ${step / period - 1} slot(s) missing after ${iso(prev.slot)}`);
      }
    }
    if (r.outcome === null || r.job === null) {
      violations.push(`slot ${iso(r.slot)} is not decided (outcome ${r.outcome}, job ${r.job})`);
      continue;
    }
    if (r.outcome === "enqueued") {
      enqueued++;
      const other = jobSlot.get(r.job);
      if (other !== undefined) violations.push(`job ${r.job} was enqueued for two slots: ${iso(other)} and ${iso(r.slot)}`);
      jobSlot.set(r.job, r.slot);
      live = r.job;
    } else {
      skipped++;
      if (live !== null && r.job !== live) violations.push(`slot ${iso(r.slot)} was skipped for job ${r.job}, but the live run then was job ${live} (enqueued for ${iso(jobSlot.get(live)!)})`);
    }
  }
  return { violations, first: sorted[0]?.slot ?? null, last: sorted[sorted.length - 1]?.slot ?? null, slots: sorted.length, enqueued, skipped, gaps };
}

/** Runs of jobs that overlap in time, from the ledger: any two of `jobs` (each's attempts) running at once for more than boundMs. */
export function overlapsBetweenJobs(entries: readonly LedgerEntry[], jobs: readonly number[], boundMs = 0): string[] {
  const want = new Set(jobs);
  const spans = new Map<string, { job: number; attempt: number; node: string; start: number; stop: number | null }>();
  for (const e of entries) {
    if (!want.has(e.job)) continue;
    const key = `${e.job}/${e.attempt}`;
    const s = spans.get(key) ?? { job: e.job, attempt: e.attempt, node: e.node, start: Infinity, stop: null };
    if (e.event === "start") s.start = Math.min(s.start, e.at);
    if (e.event === "end" || e.event === "abort") s.stop = e.at;
    spans.set(key, s);
  }
  const list = [...spans.values()].sort((a, b) => a.start - b.start);
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    if (a.stop === null) {
      out.push(`job ${a.job} attempt ${a.attempt} (${a.node}) has no end in the ledger`);
      continue;
    }
    for (let k = i + 1; k < list.length; k++) {
      const b = list[k]!;
      if (b.start >= a.stop) break;
      const shared = Math.min(a.stop, b.stop ?? Infinity) - b.start;
      if (shared > boundMs) out.push(`job ${a.job} attempt ${a.attempt} (${a.node}) and job ${b.job} attempt ${b.attempt} (${b.node}) ran at the same time for ${Math.round(shared)} ms`);
    }
  }
  return out;
}
