import { Command, Option } from "commander";
import type { Job } from "../protocol/types.js";
import { JOB_STATUSES } from "../protocol/types.js";
import { MAX_LIST_LIMIT } from "../protocol/routes.js";
import { ago, safe } from "../output/output.js";
import { toJson } from "../output/safe.js";
import { colorStatus, jobLine, progressBar, resultLine, statusLabel, summariseResult } from "../output/jobs.js";
import type { CliContext } from "./context.js";
import { intOption } from "./context.js";
import { parseId } from "./args.js";
import { parseDurationArg } from "./enqueue.js";
import { exitForJob, watchJob } from "./watch.js";
import { runDashboard } from "./dashboard.js";
import { formatDuration } from "../lib/duration.js";
import { registerJobArtifact } from "./artifact.js";

function printJob(ctx: CliContext, j: Job): void {
  const c = ctx.out.c;
  ctx.out.line(`${c.bold(`job ${j.id}`)} ${safe(j.type)}  ${colorStatus(c, j.status, statusLabel(j.status))}`);
  ctx.out.line(`  progress:   ${progressBar(j.progress)} ${j.progress}%${j.progressMessage ? ` ${safe(j.progressMessage)}` : ""}`);
  ctx.out.line(`  attempts:   ${j.attempts}/${j.maxAttempts}${j.slot !== null ? `   slot ${j.slot}` : ""}`);
  ctx.out.line(`  priority:   ${j.priority}${j.uniqueKey ? `   unique key ${safe(j.uniqueKey)}` : ""}`);
  ctx.out.line(`  payload:    ${safe(toJson(j.payload))}`);
  ctx.out.line(`  created:    ${j.createdAt} (${ago(j.createdAt)})`);
  ctx.out.line(`  run at:     ${j.runAt} (${ago(j.runAt)})`);
  if (j.startedAt) ctx.out.line(`  started:    ${j.startedAt} (${ago(j.startedAt)})`);
  if (j.finishedAt) {
    ctx.out.line(`  finished:   ${j.finishedAt} (${ago(j.finishedAt)})${j.startedAt ? `, ran ${formatDuration(Date.parse(j.finishedAt) - Date.parse(j.startedAt))}` : ""}`);
  }
  if (j.result !== null) ctx.out.line(`  result:     ${summariseResult(j.result)}`);
  if (j.error) ctx.out.line(`  error:      ${c.red(safe(j.error))}`);
  if (j.errors.length) {
    ctx.out.line("  errors:");
    for (const e of j.errors) ctx.out.line(`    attempt ${e.attempt} at ${e.at}${e.permanent ? " (permanent)" : ""}: ${safe(e.message)}`);
  }
}

export function registerJobs(program: Command, ctx: CliContext): void {
  const jobs = program.command("jobs").description("background jobs: list, show, watch, cancel, retry, prune, artifact");
  registerJobArtifact(jobs, ctx);

  jobs
    .command("list")
    .alias("ls")
    .description("list recent jobs, newest first")
    .addOption(new Option("--status <status>", "only jobs in this status").choices(JOB_STATUSES))
    .option("--type <type>", "only jobs of this type")
    .addOption(new Option("--limit <n>", "at most this many").default(50).argParser(intOption("--limit", 1, MAX_LIST_LIMIT)))
    .addHelpText("after", "\nExample:\n  $ teamwork jobs list --status failed --limit 10")
    .action(async (o: { status?: Job["status"]; type?: string; limit: number }) => {
      const client = await ctx.client();
      const list = await client.jobs.page({ status: o.status, type: o.type, limit: o.limit });
      ctx.out.result(list, (l) => {
        if (l.length === 0) return ctx.out.line("no jobs");
        const c = ctx.out.c;
        ctx.out.table(
          [
            { key: "id", title: "ID", align: "right" },
            { key: "type", title: "TYPE" },
            { key: "status", title: "STATUS" },
            { key: "attempts", title: "TRIES", align: "right" },
            { key: "progress", title: "PROGRESS" },
            { key: "slot", title: "SLOT", align: "right" },
            { key: "age", title: "CREATED" },
            { key: "info", title: "RESULT / ERROR", flex: true },
          ],
          l.map((j) => ({
            id: String(j.id),
            type: safe(j.type),
            status: colorStatus(c, j.status, statusLabel(j.status)),
            attempts: `${j.attempts}/${j.maxAttempts}`,
            progress: `${progressBar(j.progress, 10)} ${String(j.progress).padStart(3)}%`,
            slot: j.slot === null ? "-" : String(j.slot),
            age: ago(j.createdAt),
            info: j.error ? c.red(safe(j.error)) : (resultLine(j) ?? safe(j.progressMessage ?? "")),
          })),
        );
      });
    });

  jobs
    .command("show")
    .description("show every field of a job, its error history and timings")
    .argument("<id>", "job id", parseId)
    .action(async (id: number) => {
      const client = await ctx.client();
      const job = await client.jobs.get(id);
      ctx.out.result(job, (j) => printJob(ctx, j));
    });

  jobs
    .command("status")
    .description("one line about a job, for scripts that poll")
    .argument("<id>", "job id", parseId)
    .action(async (id: number) => {
      const client = await ctx.client();
      const job = await client.jobs.get(id);
      ctx.out.result(job, (j) => ctx.out.line(jobLine(j)));
    });

  jobs
    .command("logs")
    .description("the lines a job logged (the newest 200), and with --follow, new ones as they come")
    .argument("<id>", "job id", parseId)
    .option("-f, --follow", "keep printing until the job ends")
    .addHelpText("after", "\nExample:\n  $ teamwork jobs logs 42 --follow")
    .action(async (id: number, o: { follow?: boolean }) => {
      const client = await ctx.client();
      const logs = await client.jobs.logs(id);
      const print = (l: { at: string; attempt: number; message: string }) =>
        ctx.out.json ? ctx.out.data(l) : ctx.out.line(`${ctx.out.c.dim(l.at)} ${ctx.out.c.dim(`[${l.attempt}]`)} ${safe(l.message)}`);
      for (const l of logs) print(l);
      if (!o.follow) return;
      const seen = new Set(logs.map((l) => `${l.at}\u0000${l.message}`));
      // One stream: it ends with the job, or with the daemon (no waiting for it to come back).
      for await (const e of client.jobs.watch(id, { resume: false })) {
        if (e.type === "job:log" && !seen.has(`${e.data.at}\u0000${e.data.message}`)) print(e.data);
      }
    });

  jobs
    .command("why")
    .description("one line on why a job is not running (or what it is doing)")
    .argument("<id>", "job id", parseId)
    .addHelpText("after", "\nExample:\n  $ teamwork jobs why 42")
    .action(async (id: number) => {
      const client = await ctx.client();
      const why = await client.jobs.why(id);
      ctx.out.result(why, (w) => ctx.out.line(`job ${w.jobId}: ${safe(w.message)}`));
    });

  jobs
    .command("watch")
    .description("follow one job until it ends (exit 0 complete, 1 failed or cancelled), or without an id, a live dashboard of the queue")
    .argument("[id]", "job id", parseId)
    .addHelpText("after", "\nExamples:\n  $ teamwork jobs watch 42      # spinner until job 42 ends\n  $ teamwork jobs watch         # live dashboard (Ctrl-C to leave)")
    .action(async (id: number | undefined) => {
      const client = await ctx.client();
      if (id === undefined) return runDashboard(ctx, client);
      exitForJob(await watchJob(ctx, client, id));
    });

  jobs
    .command("cancel")
    .description("cancel a pending or running job, whichever daemon (node) runs it")
    .argument("<id>", "job id", parseId)
    .option("--no-wait", "answer once the cancel is recorded, not once a running job has stopped")
    .addHelpText(
      "after",
      "\nA running job is told to stop (AbortSignal); past the cancel grace (cancelGrace) its worker is terminated.\nOn PostgreSQL the job may run on another daemon: that node stops it, and the reply names it.\n\nExamples:\n  $ teamwork jobs cancel 42\n  $ teamwork jobs cancel 42 --no-wait --json",
    )
    .action(async (id: number, o: { wait: boolean }) => {
      const client = await ctx.client();
      const { job, runsOn } = await client.jobs.cancelOn(id, { wait: o.wait });
      // --json: the job, with runsOn when another node ran it.
      ctx.out.result(runsOn ? { ...job, runsOn } : job, () => {
        const head = `job ${job.id} (${safe(job.type)})`;
        if (runsOn) {
          const where = runsOn.host === null ? "no longer listed" : `host ${safe(runsOn.host)}, pid ${runsOn.pid}`;
          ctx.out.line(`${head}: cancel requested on node ${safe(runsOn.node)} (${where}), which runs it`);
        }
        if (job.status === "running") ctx.out.line(`${head}: still running; it is stopped by ${runsOn?.deadline ?? "the end of its cancel grace"}`);
        else ctx.out.line(`${head}: ${statusLabel(job.status)}`);
      });
    });

  jobs
    .command("retry")
    .description("put a failed or cancelled job back in the queue")
    .argument("<id>", "job id", parseId)
    .action(async (id: number) => {
      const client = await ctx.client();
      const job = await client.jobs.retry(id);
      ctx.out.result(job, (j) => ctx.out.line(`job ${j.id} (${safe(j.type)}) queued again (attempt ${j.attempts + 1}/${j.maxAttempts})`));
    });

  jobs
    .command("prune")
    .description("delete finished jobs older than the retention period (or --older-than)")
    .addOption(new Option("--older-than <duration>", "e.g. 1h, 7d").argParser((v: string) => (parseDurationArg(v), v)))
    .action(async (o: { olderThan?: string }) => {
      const client = await ctx.client();
      const r = { pruned: await client.jobs.prune({ olderThan: o.olderThan }) };
      ctx.out.result(r, () => ctx.out.line(`pruned ${r.pruned} finished job${r.pruned === 1 ? "" : "s"}`));
    });
}
