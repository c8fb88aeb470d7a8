// Job metrics for Prometheus: monotonic counters and histograms since the daemon started,
// fed from the event bus. Unlike `teamwork stats` (a window over the jobs still stored),
// nothing here shrinks when jobs are pruned or leave a window; a daemon restart starts
// from zero, which Prometheus sees through process_start_time_seconds and handles in rate().
//
// Terms:
// - an *attempt* is one run of a job's handler: claimed (status "running", attempt n) and
//   then ended (complete, failed, cancelled, or back to pending for a retry). An attempt
//   that was handed to a worker but never began and was put back (a "requeue": the store
//   takes the attempt number back) is not counted.
// - a *retry* is an attempt after the first (attempt number 2 and up).
// - a job *finishes* when it reaches complete, failed or cancelled (a pending job cancelled
//   counts; a failed job retried by hand and failing again finishes twice).

import type { JobHead } from "../protocol/types.js";
import type { EventBus } from "./events/bus.js";

export const OUTCOMES = ["complete", "failed", "cancelled"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Histogram upper bounds, in seconds, for run time and start latency alike: from 1 ms (a
 * no-op job, a start in an idle daemon) to an hour (a long report, a job waiting behind a
 * full queue). Times are measured in whole milliseconds.
 */
export const SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export interface HistogramSnapshot {
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Cumulative counts per bound, then the +Inf count (equal to `count`). */
  cumulative: number[];
  sum: number;
  count: number;
}

export class Histogram {
  /** Observations per bucket (not cumulative); the last is above every bound. */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[] = SECONDS_BUCKETS) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const cumulative = this.counts.map((n) => (running += n));
    return { bounds: this.bounds, cumulative, sum: this.sum, count: this.count };
  }
}

interface TypeCounters {
  finished: Record<Outcome, number>;
  attempts: number;
  retries: number;
  runSeconds: Histogram;
  startLatencySeconds: Histogram;
}

export interface TypeMetricsSnapshot {
  type: string;
  finished: Record<Outcome, number>;
  attempts: number;
  retries: number;
  /** Run time of attempts that completed their job (finished − started). */
  runSeconds: HistogramSnapshot;
  /** From due (runAt) to claimed, per counted attempt. */
  startLatencySeconds: HistogramSnapshot;
}

const FINAL = new Set<string>(OUTCOMES);

interface Attempt {
  attempt: number;
  /** When it began (ms), or null if its running announcement did not say yet. */
  started: number | null;
  /** When it was due (ms): its runAt when it was announced running (a retry moves runAt on). */
  due: number | null;
}
const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));

export class JobMetrics {
  private readonly types = new Map<string, TypeCounters>();
  /** Attempts under way, by job id: bounded by the jobs running at once. */
  private readonly attempts = new Map<number, Attempt>();
  private readonly unsubscribe: () => void;

  constructor(bus: EventBus) {
    // A new job's announcement (pending, no attempt) changes no counter: not asked for.
    this.unsubscribe = bus.on("job:status", ({ job }) => this.onStatus(job), { newJobs: false });
  }

  close(): void {
    this.unsubscribe();
  }

  /** One status change of a job, as the engine announced it. */
  onStatus(job: JobHead): void {
    const current = this.attempts.get(job.id);
    if (job.status === "running") {
      if (current?.attempt === job.attempts) return; // the same attempt announced again
      this.attempts.set(job.id, { attempt: job.attempts, started: ms(job.startedAt), due: ms(job.runAt) });
      return;
    }
    if (current) {
      this.attempts.delete(job.id);
      // A requeue takes the attempt number back: that attempt never ran.
      if (job.attempts >= current.attempt) this.attemptEnded(job, current);
    }
    if (FINAL.has(job.status)) this.counters(job.type).finished[job.status as Outcome]++;
  }

  private attemptEnded(job: JobHead, attempt: Attempt): void {
    const c = this.counters(job.type);
    c.attempts++;
    if (attempt.attempt > 1) c.retries++;
    // The daemon announces an attempt running when it hands the job to its worker, before the
    // worker begins (startedAt null then); the end's record has the start the store kept for
    // the attempt (a retry keeps it too). Parsed once (Date.parse is most of this module's
    // cost per job, about 0.3 µs a call).
    const started = attempt.started ?? ms(job.startedAt);
    c.startLatencySeconds.observe(started === null || attempt.due === null ? 0 : Math.max(0, started - attempt.due) / 1000);
    if (job.status !== "complete") return;
    const finished = ms(job.finishedAt);
    if (started !== null && finished !== null) c.runSeconds.observe(Math.max(0, finished - started) / 1000);
  }

  private counters(type: string): TypeCounters {
    let c = this.types.get(type);
    if (!c) {
      c = { finished: { complete: 0, failed: 0, cancelled: 0 }, attempts: 0, retries: 0, runSeconds: new Histogram(), startLatencySeconds: new Histogram() };
      this.types.set(type, c);
    }
    return c;
  }

  /**
   * Every type seen, plus `known` (the registered types) at zero: a series that exists
   * from the first scrape lets rate() and increase() see its first jobs. Sorted by type.
   */
  snapshot(known: Iterable<string> = []): TypeMetricsSnapshot[] {
    for (const type of known) this.counters(type);
    return [...this.types.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([type, c]) => ({
        type,
        finished: { ...c.finished },
        attempts: c.attempts,
        retries: c.retries,
        runSeconds: c.runSeconds.snapshot(),
        startLatencySeconds: c.startLatencySeconds.snapshot(),
      }));
  }
}

/**
 * Counters of the daemon's socket API, kept by its HTTP layer (daemon/server.ts) and shown
 * on /metrics: requests that did not arrive whole in time (headers within
 * connections.headersTimeout, the whole request within connections.requestTimeout), each
 * answered 408 and closed.
 */
export class ApiCounters {
  requestsTimedOut = 0;
}
