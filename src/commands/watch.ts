// Following one job to its end: an ora spinner on a terminal, one plain line per change
// elsewhere, one JSON event per line under --json. Survives a daemon restart by
// reconnecting (client.jobs.watch). Resolves with the job's final state.

import type { TeamworkClient } from "../client/teamwork.js";
import { finalJob } from "../client/watch.js";
import { errorMessage } from "../lib/errors.js";
import type { Job, JobHead } from "../protocol/types.js";
import { jobLine, summariseResult } from "../output/jobs.js";
import { safe } from "../output/safe.js";
import { displayWidth, truncateToWidth } from "../output/width.js";
import type { CliContext } from "./context.js";
import { lazyImport } from "../lib/lazy-import.js";

const FINAL = new Set<Job["status"]>(["complete", "failed", "cancelled"]);

interface Renderer {
  update(job: Job | JobHead): void;
  log(message: string): void;
  end(job: Job): void;
}

async function renderer(ctx: CliContext): Promise<Renderer> {
  const out = ctx.out;
  if (out.json) {
    return { update: () => {}, log: () => {}, end: () => {} };
  }
  if (out.tty) {
    const { default: ora } = await lazyImport<typeof import("ora")>("ora");
    const spinner = ora({ text: "connecting", stream: process.stdout, color: "cyan" }).start();
    let last = "";
    let lastLog = "";
    // One line beside the spinner, cut by columns (a wrapped spinner line redraws badly).
    const draw = () => {
      const width = Math.max(20, out.columns - 4);
      const head = truncateToWidth(last, width);
      const room = width - displayWidth(head) - 3;
      spinner.text = lastLog && room > 8 ? `${head} ${out.c.dim(`· ${truncateToWidth(lastLog, room)}`)}` : head;
    };
    return {
      update: (job) => {
        last = jobLine(job);
        draw();
      },
      log: (message) => {
        lastLog = safe(message);
        draw();
      },
      end: (job) => {
        if (job.status === "complete") spinner.succeed(out.c.green(`job ${job.id} (${safe(job.type)}) complete`) + (job.result !== null ? `: ${summariseResult(job.result)}` : ""));
        else spinner.fail(out.c.red(jobLine(job)));
      },
    };
  }
  let last = "";
  return {
    update: (job) => {
      // The final line is end()'s: it has the whole job, result included.
      if (FINAL.has(job.status)) return;
      const line = jobLine(job);
      if (line !== last) out.line(line);
      last = line;
    },
    log: (message) => out.line(`  log: ${safe(message)}`),
    end: (job) => out.line(jobLine(job)),
  };
}

export async function watchJob(ctx: CliContext, client: TeamworkClient, id: number): Promise<Job> {
  const r = await renderer(ctx);
  let job = null as JobHead | null;
  const events = client.jobs.watch(id, {
    onLost: (err) => ctx.out.warn(`lost the daemon while watching job ${id}: ${errorMessage(err)}; still trying (Ctrl-C to stop)`),
    onBack: () => ctx.out.warn(`the daemon answers again; still watching job ${id}`),
  });
  for await (const e of events) {
    if (ctx.out.json) ctx.out.data({ event: e.type, ...e.data });
    if (e.type === "job:log") {
      r.log(e.data.message);
      continue;
    }
    if (e.type === "job:status") job = e.data.job;
    else if (job && e.type === "job:progress") job = { ...job, progress: e.data.progress, progressMessage: e.data.message };
    if (job) r.update(job);
  }
  // Events carry the job's head; its result is read once, at the end (across a restart of the
  // daemon too: it may have been stopping as the job ended).
  const whole = await finalJob(client.transport, id);
  r.end(whole);
  return whole;
}

/** Exit 0 when the job completed, 1 when it failed or was cancelled. */
export function exitForJob(job: Job): void {
  if (job.status !== "complete") process.exitCode = 1;
}
