import { parseDuration } from "../../lib/duration.js";
import { invalid } from "../../lib/errors.js";
import type { Stats } from "../../protocol/types.js";
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

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The Prometheus text exposition format, version 0.0.4. */
export function toPrometheus(s: Stats, counts: Record<string, number>): string {
  const out: string[] = [];
  const metric = (name: string, help: string, type: "gauge" | "summary", samples: [Record<string, string>, number | null][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      if (value === null) continue;
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(",");
      out.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  };
  metric("teamwork_jobs", "Stored jobs by status.", "gauge", Object.entries(counts).map(([status, n]) => [{ status }, n]));
  metric("teamwork_jobs_due", "Pending jobs that are due and wait for a slot.", "gauge", [[{}, s.queue.due]]);
  metric("teamwork_slots", "Worker slots.", "gauge", [[{ state: "busy" }, s.queue.running], [{ state: "total" }, s.queue.concurrency]]);
  metric("teamwork_queue_paused", "1 when the whole queue is paused.", "gauge", [[{}, s.queue.paused.all ? 1 : 0]]);
  metric("teamwork_jobs_finished", "Jobs finished in the stats window, by type and outcome.", "gauge",
    s.types.flatMap((t) => [[{ type: t.type, status: "complete" }, t.complete], [{ type: t.type, status: "failed" }, t.failed], [{ type: t.type, status: "cancelled" }, t.cancelled]] as [Record<string, string>, number][]));
  metric("teamwork_jobs_retried", "Attempts beyond the first of jobs finished in the stats window.", "gauge", s.types.map((t) => [{ type: t.type }, t.retried]));
  metric("teamwork_job_run_seconds", "Run time of completed jobs.", "summary",
    s.types.flatMap((t) => [[{ type: t.type, quantile: "0.95" }, t.runMs.p95 === null ? null : t.runMs.p95 / 1000]] as [Record<string, string>, number | null][]));
  metric("teamwork_job_start_latency_seconds", "From due to started.", "summary",
    s.types.flatMap((t) => (["0.5", "0.95", "0.99"] as const).map((q, i) => [{ type: t.type, quantile: q }, [t.startLatencyMs.p50, t.startLatencyMs.p95, t.startLatencyMs.p99][i] === null ? null : [t.startLatencyMs.p50, t.startLatencyMs.p95, t.startLatencyMs.p99][i]! / 1000]) as [Record<string, string>, number | null][]));
  return out.join("\n") + "\n";
}

export function statsRoutes(app: AppContext): Pick<Handlers, "stats" | "metrics"> {
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
      const [s, counts] = await Promise.all([collectStats(app, 3_600_000), app.engine.counts()]);
      return { status: 200, body: toPrometheus(s, counts), contentType: "text/plain; version=0.0.4; charset=utf-8" };
    },
  };
}
