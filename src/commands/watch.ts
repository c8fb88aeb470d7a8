// Following one job to its end: an ora spinner on a terminal, one plain line per change
// elsewhere, one JSON event per line under --json. Survives a daemon restart by
// reconnecting. Resolves with the job's final state.

import type { Client } from "../client/client.js";
import { TeamworkError } from "../lib/errors.js";
import type { Job } from "../protocol/types.js";
import type { StreamEvent } from "../protocol/events.js";
import { jobLine, summariseResult } from "../output/jobs.js";
import type { CliContext } from "./context.js";
import { lazyImport } from "../lib/lazy-import.js";

const FINAL = new Set<Job["status"]>(["complete", "failed", "cancelled"]);

interface Renderer {
  update(job: Job): void;
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
    const draw = () => {
      const width = Math.max(20, out.columns - 4);
      const text = lastLog ? `${last} ${out.c.dim(`· ${lastLog}`)}` : last;
      spinner.text = text.length > width + 20 ? text.slice(0, width) : text;
    };
    return {
      update: (job) => {
        last = jobLine(job);
        draw();
      },
      log: (message) => {
        lastLog = message;
        draw();
      },
      end: (job) => {
        if (job.status === "complete") spinner.succeed(out.c.green(`job ${job.id} (${job.type}) complete`) + (job.result !== null ? `: ${summariseResult(job.result)}` : ""));
        else spinner.fail(out.c.red(jobLine(job)));
      },
    };
  }
  let last = "";
  return {
    update: (job) => {
      const line = jobLine(job);
      if (line !== last) out.line(line);
      last = line;
    },
    log: (message) => out.line(`  log: ${message}`),
    end: () => {},
  };
}

export async function watchJob(ctx: CliContext, client: Client, id: number): Promise<Job> {
  const r = await renderer(ctx);
  let job: Job | null = null;
  let lastConnect = 0;
  for (;;) {
    let final: Job | null = null;
    lastConnect = Date.now();
    const stream = client.stream("jobsStream", { id }, (e: StreamEvent) => {
      if (ctx.out.json) ctx.out.data({ event: e.type, ...e.data });
      if (e.type === "job:log") {
        r.log(e.data.message);
        return;
      }
      if (e.type === "job:status") job = e.data.job;
      else if (job && e.type === "job:progress") job = { ...job, progress: e.data.progress, progressMessage: e.data.message };
      if (!job) return;
      r.update(job);
      if (FINAL.has(job.status)) {
        final = job;
        stream.close();
      }
    });
    try {
      await stream.done;
    } catch (err) {
      // 404 and the like are final; an unreachable daemon may be restarting.
      if (!(err instanceof TeamworkError) || err.code !== "daemon_unreachable") throw err;
    }
    if (final) {
      r.end(final);
      return final;
    }
    // The stream dropped (daemon restarting): reconnect, but give up after a minute of nothing.
    if (Date.now() - lastConnect > 60_000 && !job) throw new TeamworkError("daemon_unreachable", "lost the daemon while watching");
    await new Promise((res) => setTimeout(res, 200));
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await client.call("health", {});
        break;
      } catch {
        if (Date.now() > deadline) throw new TeamworkError("daemon_unreachable", `lost the daemon while watching job ${id}`, "check `teamwork daemon status`");
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }
}

/** Exit 0 when the job completed, 1 when it failed or was cancelled. */
export function exitForJob(job: Job): void {
  if (job.status !== "complete") process.exitCode = 1;
}
