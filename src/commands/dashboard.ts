// `teamwork jobs watch` with no id: a live table of the queue that redraws in place,
// fed by the daemon's event stream (with a 5 s polling fallback while the stream is down).
// Outside a terminal it prints one plain line per status change; with --json, one event per line.

import type { TeamworkClient } from "../client/teamwork.js";
import type { Job, JobHead, JobStatus, JobSummary } from "../protocol/types.js";
import { JOB_STATUSES } from "../protocol/types.js";
import type { StreamEvent } from "../protocol/events.js";
import { ago, stripColour, truncate, visible } from "../output/output.js";
import { guardRendered, safe } from "../output/safe.js";
import { colorStatus, jobLine, progressBar, resultLine, statusLabel, summariseResult } from "../output/jobs.js";
import type { CliContext } from "./context.js";

const ESC = "\u001b[";
const REDRAW_MS = 100;
const POLL_MS = 5000;
const TOAST_MS = 6000;

/** The one line shown when a job ends while the dashboard is open (user text made safe). */
export function toastFor(job: Job): string | null {
  const type = safe(job.type);
  if (job.status !== "complete") return job.status === "failed" ? `job ${job.id} (${type}) failed: ${safe(job.error ?? "")}` : null;
  const r = job.result as { sent?: unknown } | null;
  if ((job.type === "assignment-email" || job.type === "notify") && r && Array.isArray(r.sent)) {
    return r.sent.length ? `Notification sent to ${safe(r.sent.join(", "))}` : `job ${job.id} (${type}) complete`;
  }
  return `job ${job.id} (${type}) complete${job.result !== null ? `: ${summariseResult(job.result)}` : ""}`;
}

export interface DashboardState {
  /** Summaries from the list, heads from the event stream. */
  jobs: Map<number, JobSummary | JobHead>;
  counts: Record<JobStatus, number>;
  toast: { text: string; ok: boolean; until: number } | null;
  connected: boolean;
  /** The latest line each job logged. */
  lastLog: Map<number, string>;
  paused: { all: boolean; types: string[] };
}

/** Renders the dashboard into lines that fit width × height (pure, for tests). */
export function renderDashboard(ctx: Pick<CliContext, "out">, s: DashboardState, width: number, height: number, now = Date.now()): string[] {
  const c = ctx.out.c;
  const jobs = [...s.jobs.values()].sort((a, b) => b.id - a.id);
  const running = jobs.filter((j) => j.status === "running").sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0));
  const lines: string[] = [];
  const totals = JOB_STATUSES.map((st) => colorStatus(c, st, `${st === "cancelled" ? "cancelled" : st} ${s.counts[st]}`)).join("  ");
  const paused = s.paused.all ? c.yellow("  QUEUE PAUSED") : s.paused.types.length ? c.yellow(`  paused: ${safe(s.paused.types.join(", "))}`) : "";
  lines.push(`${c.bold("teamwork jobs")}  ${totals}${paused}${s.connected ? "" : c.red("  (stream lost: polling every 5s)")}`);
  lines.push(running.length ? `slots: ${running.map((j) => `${c.cyan(`#${j.slot}`)} job ${j.id} ${safe(j.type)} ${j.progress}%`).join("  ")}` : c.dim("slots: all idle"));
  lines.push(s.toast && s.toast.until > now ? (s.toast.ok ? c.green(`✔ ${s.toast.text}`) : c.red(`✖ ${s.toast.text}`)) : "");
  const header = ["ID", "TYPE", "STATUS", "TRIES", "PROGRESS", "SLOT", "AGE", "MESSAGE"];
  const rows = jobs.slice(0, Math.max(0, height - lines.length - 2)).map((j) => [
    String(j.id),
    safe(j.type),
    colorStatus(c, j.status, statusLabel(j.status)),
    `${j.attempts}/${j.maxAttempts}`,
    `${progressBar(j.progress, 12)} ${String(j.progress).padStart(3)}%`,
    j.slot === null ? "-" : String(j.slot),
    ago(j.createdAt, now),
    j.error ? c.red(safe(j.error)) : (j.status === "complete" ? resultLine(j) : null) ?? (j.progressMessage !== null ? safe(j.progressMessage) : s.lastLog.has(j.id) ? c.dim(safe(s.lastLog.get(j.id)!)) : ""),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i]!))));
  const fixed = widths.slice(0, -1).reduce((a, b) => a + b + 2, 0);
  widths[widths.length - 1] = Math.max(0, Math.min(widths.at(-1)!, width - fixed));
  const fmt = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const w = widths[i]!;
        const t = truncate(cell, w);
        return i === 0 ? " ".repeat(Math.max(0, w - visible(t))) + t : t + " ".repeat(Math.max(0, w - visible(t)));
      })
      .join("  ")
      .trimEnd();
  lines.push(c.bold(fmt(header)));
  for (const r of rows) lines.push(fmt(r));
  if (jobs.length === 0) lines.push(c.dim("no jobs yet: try `teamwork enqueue report`"));
  // The screen is redrawn with cursor moves: a line that wrapped, or a control that moved
  // the cursor, would shift every line after it.
  const colour = c.level > 0;
  return lines.map((l) => guardRendered(l, { colour })).map((l) => (visible(l) > width ? truncate(stripColour(l), width) : l)).slice(0, height);
}

export async function runDashboard(ctx: CliContext, client: TeamworkClient): Promise<void> {
  const out = ctx.out;
  const state: DashboardState = { jobs: new Map(), counts: { pending: 0, running: 0, complete: 0, failed: 0, cancelled: 0 }, toast: null, connected: true, lastLog: new Map(), paused: { all: false, types: [] } };
  const limit = Math.max(20, out.rows);
  const refresh = async () => {
    const [jobs, status] = await Promise.all([client.jobs.page({ limit }), client.daemon.status()]);
    state.jobs = new Map(jobs.map((j) => [j.id, j]));
    state.counts = status.counts.jobs;
    state.paused = status.paused;
  };
  await refresh();

  let dirty = true;
  let timer: NodeJS.Timeout | null = null;
  const draw = () => {
    if (!out.tty || out.json) return;
    const lines = renderDashboard(ctx, state, out.columns, out.rows - 1);
    out.write(`${ESC}H${lines.map((l) => l + `${ESC}K`).join("\n")}\n${ESC}J`);
    dirty = false;
  };
  const schedule = () => {
    dirty = true;
    timer ??= setTimeout(() => {
      timer = null;
      if (dirty) draw();
    }, REDRAW_MS);
  };

  // An event carries a job's head; the line and the toast of a job that ended show its
  // result, so the job is read, a few at a time (past that, the line goes without it).
  let reading = 0;
  const ended = (head: JobHead, toast: boolean) => {
    const show = (job: Job | JobHead) => {
      if (!out.tty) out.line(jobLine(job));
      const text = toast && "result" in job ? toastFor(job) : null;
      if (text) state.toast = { text, ok: job.status === "complete", until: Date.now() + TOAST_MS };
      schedule();
    };
    if (reading >= 4) return show(head);
    reading++;
    client.jobs
      .get(head.id)
      .then(
        (job) => show(job),
        () => show(head),
      )
      .finally(() => reading--);
  };

  const onEvent = (e: StreamEvent) => {
    if (out.json) {
      out.data({ event: e.type, ...e.data });
      return;
    }
    if (e.type === "job:progress") {
      const j = state.jobs.get(e.data.jobId);
      if (j) state.jobs.set(j.id, { ...j, progress: e.data.progress, progressMessage: e.data.message });
    } else if (e.type === "job:log") {
      state.lastLog.set(e.data.jobId, e.data.message);
    } else {
      const job = e.data.job;
      const prev = state.jobs.get(job.id);
      if (prev?.status !== job.status) {
        if (prev) state.counts[prev.status] = Math.max(0, state.counts[prev.status] - 1);
        state.counts[job.status]++;
        if (job.status === "complete" || job.status === "failed") ended(job, prev?.status === "running" || job.status === "complete");
        else if (!out.tty) out.line(jobLine(job));
      }
      state.jobs.set(job.id, job);
      if (state.jobs.size > limit * 2) {
        const oldest = [...state.jobs.keys()].sort((a, b) => a - b).slice(0, state.jobs.size - limit);
        for (const id of oldest) state.jobs.delete(id);
      }
    }
    schedule();
  };

  if (out.tty && !out.json) {
    out.write(`${ESC}?1049h${ESC}?25l`); // alternate screen, hide cursor
    const restore = () => out.write(`${ESC}?25h${ESC}?1049l`);
    process.on("exit", restore);
    process.stdout.on("resize", schedule);
  }
  const tick = setInterval(schedule, 1000); // ages and toasts expire
  tick.unref();
  draw();
  // Follow the stream; when it drops, poll every 5 s and try to reconnect.
  let resumeAt: string | null = null;
  for (;;) {
    // Resumes where the last stream stopped (events missed while away arrive first); a
    // reset (the daemon restarted) is covered by the read below.
    const stream = client.events(onEvent, { lastEventId: resumeAt });
    try {
      await stream.opened;
      // Read again once subscribed: whatever changed between the first read and the stream
      // opening (a quick job can start and end in that time) sent no event to this stream.
      state.connected = true;
      await refresh().catch(() => {});
      schedule();
      await stream.done;
    } catch {
      // unreachable: fall through to polling
    }
    resumeAt = stream.lastEventId;
    state.connected = false;
    schedule();
    await new Promise((r) => setTimeout(r, POLL_MS));
    await refresh().then(schedule, () => {});
  }
}
