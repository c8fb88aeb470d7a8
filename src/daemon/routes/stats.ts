import { parseDuration } from "../../lib/duration.js";
import { invalid } from "../../lib/errors.js";
import type { Stats } from "../../protocol/types.js";
import { ApiCounters, JobMetrics, OUTCOMES, type HistogramSnapshot, type TypeMetricsSnapshot } from "../../queue/metrics.js";
import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";

export async function collectStats(app: AppContext, sinceMs: number): Promise<Stats> {
  const now = app.clock.now();
  const s = await app.store.jobs.stats(now - sinceMs, now);
  return {
    since: new Date(now - sinceMs).toISOString(),
    types: s.types,
    queue: { pending: s.pending, due: s.due, running: s.running, concurrency: app.engine.concurrency, paused: app.engine.pausedState },
  };
}

// ---------------------------------------------------------------------------------------
// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).

export type MetricType = "counter" | "gauge" | "histogram";
export interface Sample {
  /** Appended to the family's name: "_bucket", "_sum", "_count" for a histogram. */
  suffix?: string;
  labels: Record<string, string>;
  value: number;
}
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

/** A label value: backslash, double quote and line feed are escaped, as the format requires. */
export const escapeLabelValue = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
/** HELP text: backslash and line feed are escaped (a quote is not, there). */
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** A sample value as Go's ParseFloat (which Prometheus uses) reads it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function formatExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
      out.push(`${f.name}${s.suffix ?? ""}${labels ? `{${labels}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return out.join("\n") + "\n";
}

/** A histogram's samples: cumulative buckets ending in le="+Inf", then _sum and _count. */
export function histogramSamples(labels: Record<string, string>, h: HistogramSnapshot): Sample[] {
  const buckets = h.bounds.map((le, i) => ({ suffix: "_bucket", labels: { ...labels, le: formatValue(le) }, value: h.cumulative[i]! }));
  return [
    ...buckets,
    { suffix: "_bucket", labels: { ...labels, le: "+Inf" }, value: h.count },
    { suffix: "_sum", labels, value: h.sum },
    { suffix: "_count", labels, value: h.count },
  ];
}

export interface MetricsInput {
  /** Stored jobs by status (all statuses). */
  counts: Record<string, number>;
  queue: Stats["queue"];
  types: TypeMetricsSnapshot[];
  /** When the daemon process started, Unix seconds. */
  processStartSeconds: number;
  /** Requests answered 408 because they did not arrive whole in time (ApiCounters). */
  requestsTimedOut?: number;
}

export function metricFamilies(m: MetricsInput): MetricFamily[] {
  const byType = <T>(f: (t: TypeMetricsSnapshot) => T) => m.types.map(f);
  return [
    { name: "process_start_time_seconds", help: "Start time of the daemon process since the Unix epoch, in seconds. The counters below count from here.", type: "gauge", samples: [{ labels: {}, value: m.processStartSeconds }] },
    { name: "teamwork_jobs", help: "Stored jobs by status.", type: "gauge", samples: Object.entries(m.counts).map(([status, n]) => ({ labels: { status }, value: n })) },
    { name: "teamwork_jobs_due", help: "Pending jobs that are due and wait for a slot.", type: "gauge", samples: [{ labels: {}, value: m.queue.due }] },
    { name: "teamwork_slots", help: "Worker slots: busy (running jobs) and total.", type: "gauge", samples: [{ labels: { state: "busy" }, value: m.queue.running }, { labels: { state: "total" }, value: m.queue.concurrency }] },
    { name: "teamwork_queue_paused", help: "1 when the whole queue is paused.", type: "gauge", samples: [{ labels: {}, value: m.queue.paused.all ? 1 : 0 }] },
    { name: "teamwork_jobs_finished_total", help: "Jobs that reached a final status since the daemon started, by type and outcome.", type: "counter",
      samples: byType((t) => OUTCOMES.map((outcome) => ({ labels: { type: t.type, outcome }, value: t.finished[outcome] }))).flat() },
    { name: "teamwork_job_attempts_total", help: "Attempts (runs of a handler) that ended since the daemon started, by type.", type: "counter", samples: byType((t) => ({ labels: { type: t.type }, value: t.attempts })) },
    { name: "teamwork_job_retries_total", help: "Attempts after a job's first that ended since the daemon started, by type.", type: "counter", samples: byType((t) => ({ labels: { type: t.type }, value: t.retries })) },
    { name: "teamwork_job_run_seconds", help: "Run time of attempts that completed their job (finished minus started), by type.", type: "histogram", samples: byType((t) => histogramSamples({ type: t.type }, t.runSeconds)).flat() },
    { name: "teamwork_job_start_latency_seconds", help: "From due (runAt) to started, per attempt, by type.", type: "histogram", samples: byType((t) => histogramSamples({ type: t.type }, t.startLatencySeconds)).flat() },
    { name: "teamwork_requests_timed_out_total", help: "Requests whose headers or body did not arrive in time since the daemon started, answered 408 and closed.", type: "counter", samples: [{ labels: {}, value: m.requestsTimedOut ?? 0 }] },
  ];
}

/** When this process started (the format's process_start_time_seconds), Unix seconds. */
const processStartSeconds = Math.round(performance.timeOrigin) / 1000;

/**
 * Called once, when the daemon builds its handlers, before the engine starts: the counters
 * subscribe to the bus here, so they see every job from the first.
 */
export function statsRoutes(app: AppContext, api: ApiCounters = new ApiCounters()): Pick<Handlers, "stats" | "metrics"> {
  const jobMetrics = new JobMetrics(app.bus);
  return {
    async stats({ since }) {
      let ms = 86_400_000;
      if (since !== undefined) {
        try {
          ms = parseDuration(since);
        } catch (err) {
          throw invalid(`since: ${(err as Error).message}`);
        }
      }
      return ok(await collectStats(app, ms));
    },
    async metrics() {
      // A zero window: only the queue's gauges are read from the store; the job counters
      // come from the bus and do not depend on what is still stored.
      const [s, counts] = await Promise.all([collectStats(app, 0), app.engine.counts()]);
      const body = formatExposition(metricFamilies({ counts, queue: s.queue, types: jobMetrics.snapshot(app.engine.registry.types.keys()), processStartSeconds, requestsTimedOut: api.requestsTimedOut }));
      return { status: 200, body, contentType: "text/plain; version=0.0.4; charset=utf-8" };
    },
  };
}
