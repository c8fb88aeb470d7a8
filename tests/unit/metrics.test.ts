// /metrics (issue 17, item 10): the exposition formatter and the bus-fed job counters.

import { describe, expect, it } from "vitest";
import { EventBus } from "../../src/queue/events/bus.js";
import { Histogram, JobMetrics, SECONDS_BUCKETS } from "../../src/queue/metrics.js";
import { escapeLabelValue, formatExposition, formatValue, histogramSamples, metricFamilies, type MetricsInput } from "../../src/daemon/routes/stats.js";
import type { Job } from "../../src/protocol/types.js";
import { key, parseExposition } from "../helpers/prometheus.js";

const T0 = Date.parse("2026-12-02T10:00:00.000Z");
const iso = (ms: number) => new Date(T0 + ms).toISOString();

let nextId = 1;
function job(over: Partial<Job> & { type?: string }): Job {
  return {
    id: nextId,
    type: "noop",
    payload: {},
    status: "pending",
    progress: 0,
    progressMessage: null,
    attempts: 0,
    maxAttempts: 3,
    runAt: iso(0),
    priority: 0,
    uniqueKey: null,
    slot: null,
    result: null,
    error: null,
    errors: [],
    createdAt: iso(0),
    startedAt: null,
    finishedAt: null,
    ...over,
  };
}

const input = (types: MetricsInput["types"]): MetricsInput => ({
  counts: { pending: 1, running: 0, complete: 2, failed: 0, cancelled: 0 },
  queue: { pending: 1, due: 1, running: 0, concurrency: 3, paused: { all: false, types: [] } },
  types,
  processStartSeconds: 1_764_669_600.123,
});

describe("Histogram", () => {
  it("counts into cumulative buckets whose last (+Inf) equals the count", () => {
    const h = new Histogram([0.1, 1, 10]);
    for (const v of [0, 0.1, 0.2, 1, 5, 11, 1e9]) h.observe(v);
    const s = h.snapshot();
    expect(s.cumulative).toEqual([2, 4, 5, 7]);
    expect(s.count).toBe(7);
    expect(s.sum).toBeCloseTo(0.1 + 0.2 + 1 + 5 + 11 + 1e9);
  });
});

describe("formatExposition", () => {
  it("escapes backslash, double quote and line feed in label values, and they read back", () => {
    const nasty = 'a\\b"c\nd';
    expect(escapeLabelValue(nasty)).toBe('a\\\\b\\"c\\nd');
    const text = formatExposition([{ name: "x_total", help: "with \\ and\nnewline", type: "counter", samples: [{ labels: { type: nasty }, value: 3 }] }]);
    expect(text).toBe('# HELP x_total with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{type="a\\\\b\\"c\\nd"} 3\n');
    expect(parseExposition(text).samples.get(key("x_total", { type: nasty }))).toBe(3);
  });

  it("writes values as Prometheus reads them", () => {
    expect([0, 1.5, 1e-7, Infinity, -Infinity, NaN].map(formatValue)).toEqual(["0", "1.5", "1e-7", "+Inf", "-Inf", "NaN"]);
  });

  it("writes a histogram as cumulative buckets ending in +Inf, then _sum and _count", () => {
    const h = new Histogram([0.5, 1]);
    h.observe(0.2);
    h.observe(3);
    const text = formatExposition([{ name: "h_seconds", help: "h", type: "histogram", samples: histogramSamples({ type: "t" }, h.snapshot()) }]);
    expect(text).toBe(
      [
        "# HELP h_seconds h",
        "# TYPE h_seconds histogram",
        'h_seconds_bucket{type="t",le="0.5"} 1',
        'h_seconds_bucket{type="t",le="1"} 1',
        'h_seconds_bucket{type="t",le="+Inf"} 2',
        'h_seconds_sum{type="t"} 3.2',
        'h_seconds_count{type="t"} 2',
        "",
      ].join("\n"),
    );
    parseExposition(text);
  });

  it("the whole /metrics body is valid, with counters, histograms per type and the gauges", () => {
    const bus = new EventBus();
    const m = new JobMetrics(bus);
    const nasty = 'we"ird\\type\nname';
    bus.emit("job:status", { job: job({ id: 1, type: nasty, status: "running", attempts: 1, startedAt: iso(5) }) });
    bus.emit("job:status", { job: job({ id: 1, type: nasty, status: "complete", attempts: 1, startedAt: iso(5), finishedAt: iso(255) }) });
    const text = formatExposition(metricFamilies(input(m.snapshot(["noop"]))));
    const e = parseExposition(text);
    expect(e.types.get("teamwork_jobs_finished_total")).toBe("counter");
    expect(e.types.get("teamwork_job_run_seconds")).toBe("histogram");
    expect(e.types.get("teamwork_job_start_latency_seconds")).toBe("histogram");
    expect(e.types.get("process_start_time_seconds")).toBe("gauge");
    expect(e.samples.get(key("process_start_time_seconds"))).toBe(1_764_669_600.123);
    expect(e.samples.get(key("teamwork_jobs_finished_total", { type: nasty, outcome: "complete" }))).toBe(1);
    expect(e.samples.get(key("teamwork_jobs_finished_total", { type: "noop", outcome: "failed" }))).toBe(0);
    expect(e.samples.get(key("teamwork_job_run_seconds_sum", { type: nasty }))).toBe(0.25);
    expect(e.samples.get(key("teamwork_job_run_seconds_bucket", { type: nasty, le: "0.25" }))).toBe(1);
    expect(e.samples.get(key("teamwork_job_run_seconds_bucket", { type: nasty, le: "0.1" }))).toBe(0);
    expect(e.samples.get(key("teamwork_job_start_latency_seconds_count", { type: nasty }))).toBe(1);
    expect(e.samples.get(key("teamwork_job_start_latency_seconds_bucket", { type: nasty, le: "0.005" }))).toBe(1);
    expect(e.samples.get(key("teamwork_slots", { state: "total" }))).toBe(3);
    expect(e.samples.get(key("teamwork_jobs", { status: "complete" }))).toBe(2);
    expect([...e.samples.keys()].filter((k) => k.startsWith("teamwork_job_run_seconds_bucket{") && k.includes('"noop"'))).toHaveLength(SECONDS_BUCKETS.length + 1);
  });
});

describe("JobMetrics", () => {
  it("counts finishes, attempts and retries from status events, and never an attempt that was put back", () => {
    const bus = new EventBus();
    const m = new JobMetrics(bus);
    const emit = (j: Job) => bus.emit("job:status", { job: j });
    // 1: enqueued, runs once, completes in 40 ms after waiting 10 ms.
    emit(job({ id: 1, status: "pending" }));
    emit(job({ id: 1, status: "running", attempts: 1, startedAt: iso(10) }));
    emit(job({ id: 1, status: "complete", attempts: 1, startedAt: iso(10), finishedAt: iso(50) }));
    // 2: fails, is retried, fails for good.
    emit(job({ id: 2, type: "throw", status: "running", attempts: 1, startedAt: iso(0) }));
    emit(job({ id: 2, type: "throw", status: "pending", attempts: 1, runAt: iso(1000), error: "boom" }));
    emit(job({ id: 2, type: "throw", status: "running", attempts: 2, runAt: iso(1000), startedAt: iso(1002) }));
    emit(job({ id: 2, type: "throw", status: "failed", attempts: 2, runAt: iso(1000), startedAt: iso(1002), finishedAt: iso(1003) }));
    // 3: handed to a worker, put back at shutdown (attempt taken back), then cancelled while pending.
    emit(job({ id: 3, status: "running", attempts: 1, startedAt: iso(0) }));
    emit(job({ id: 3, status: "pending", attempts: 0 }));
    emit(job({ id: 3, status: "cancelled", attempts: 0, finishedAt: iso(9) }));
    // 4: the same running announcement twice counts once.
    emit(job({ id: 4, status: "running", attempts: 1, startedAt: iso(0) }));
    emit(job({ id: 4, status: "running", attempts: 1, startedAt: iso(0) }));
    emit(job({ id: 4, status: "cancelled", attempts: 1, startedAt: iso(0), finishedAt: iso(7) }));

    const [noop, thrown] = m.snapshot();
    expect(noop).toMatchObject({ type: "noop", finished: { complete: 1, failed: 0, cancelled: 2 }, attempts: 2, retries: 0 });
    expect(noop!.runSeconds).toMatchObject({ count: 1, sum: 0.04 });
    expect(noop!.startLatencySeconds).toMatchObject({ count: 2, sum: 0.01 });
    expect(thrown).toMatchObject({ type: "throw", finished: { complete: 0, failed: 1, cancelled: 0 }, attempts: 2, retries: 1 });
    expect(thrown!.runSeconds.count).toBe(0);
    expect(thrown!.startLatencySeconds).toMatchObject({ count: 2, sum: 0.002 });

    m.close();
    emit(job({ id: 5, status: "cancelled" }));
    expect(m.snapshot()[0]!.finished.cancelled).toBe(2);
  });

  it("takes an attempt's start from its end when it was announced running before it began (as the daemon does, at hand-over)", () => {
    const bus = new EventBus();
    const m = new JobMetrics(bus);
    const emit = (j: Job) => bus.emit("job:status", { job: j });
    // Due at 0, handed over (no start yet), begun at 7 ms, complete at 20 ms.
    emit(job({ id: 1, status: "running", attempts: 1, startedAt: null }));
    emit(job({ id: 1, status: "complete", attempts: 1, startedAt: iso(7), finishedAt: iso(20) }));
    // Due at 0, handed over, begun at 3 ms, failed and retried (runAt moves to 1000): due stays 0.
    emit(job({ id: 2, type: "throw", status: "running", attempts: 1, startedAt: null }));
    emit(job({ id: 2, type: "throw", status: "pending", attempts: 1, runAt: iso(1000), startedAt: iso(3), error: "boom" }));
    const [noop, thrown] = m.snapshot();
    expect(noop!.startLatencySeconds).toMatchObject({ count: 1, sum: 0.007 });
    expect(noop!.runSeconds).toMatchObject({ count: 1, sum: 0.013 });
    expect(thrown!.startLatencySeconds).toMatchObject({ count: 1, sum: 0.003 });
    m.close();
  });
});

describe("the skipped announcement (new jobs are not announced for the metrics alone)", () => {
  it("the metrics do not ask for new jobs' announcement; any other status listener does, until it leaves", () => {
    const bus = new EventBus();
    const m = new JobMetrics(bus);
    expect(bus.wants("job:status")).toBe(true);
    expect(bus.wantsNewJobs()).toBe(false);
    const off = bus.on("job:status", () => {});
    expect(bus.wantsNewJobs()).toBe(true);
    off();
    expect(bus.wantsNewJobs()).toBe(false);
    m.close();
    expect(bus.wants("job:status")).toBe(false);
  });

  it("the metrics count the same whether a new job was announced or not", () => {
    const run = (announceNew: boolean) => {
      const bus = new EventBus();
      const m = new JobMetrics(bus);
      const emit = (j: Job) => bus.emit("job:status", { job: j });
      if (announceNew) emit(job({ id: 1, status: "pending" }));
      emit(job({ id: 1, status: "running", attempts: 1, startedAt: iso(10) }));
      emit(job({ id: 1, status: "complete", attempts: 1, startedAt: iso(10), finishedAt: iso(50) }));
      return m.snapshot();
    };
    expect(run(false)).toEqual(run(true));
    expect(run(false)[0]!.finished.complete).toBe(1);
  });
});
