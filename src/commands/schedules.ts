import { Command, Option } from "commander";
import type { Json, Schedule } from "../protocol/types.js";
import { ago, count, safe } from "../output/output.js";
import { formatInZone } from "../output/time.js";
import { colorStatus } from "../output/jobs.js";
import type { CliContext } from "./context.js";
import { parseJsonArg } from "./args.js";
import { parseDurationArg } from "./enqueue.js";
import { exitForJob, watchJob } from "./watch.js";
import { formatDuration, parseDuration } from "../lib/duration.js";

const bytes = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`);

/** When a schedule runs next, on the clock of its own zone, with that zone's offset. */
const nextRun = (s: Schedule) => (s.nextRunAt ? formatInZone(s.nextRunAt, s.timezone) : "never");

function scheduleRows(ctx: CliContext, list: Schedule[]) {
  const c = ctx.out.c;
  return list.map((s) => ({
    name: safe(s.name),
    cron: safe(s.cron),
    tz: s.timezone !== null ? safe(s.timezone) : "local",
    type: safe(s.type),
    enabled: s.enabled ? c.green("yes") : c.yellow("paused"),
    last: s.lastRunAt ? `${ago(s.lastRunAt)} (${s.lastOutcome === "skipped" ? c.yellow("skipped") : s.lastJob ? colorStatus(c, s.lastJob.status, `job ${s.lastJob.id} ${s.lastJob.status}`) : "enqueued"})` : c.dim("never"),
    next: s.nextRunAt ? `${nextRun(s)} (${ago(s.nextRunAt)})` : c.dim("-"),
  }));
}

export function registerSchedules(program: Command, ctx: CliContext): void {
  const schedules = program.command("schedules").description("cron schedules run by the daemon: list, set, pause, resume, run now");

  schedules
    .command("list")
    .alias("ls")
    .description("every schedule with its last and next run")
    .action(async () => {
      const client = await ctx.client();
      const list = await client.schedules.list();
      ctx.out.result(list, (l) =>
        ctx.out.table(
          [
            { key: "name", title: "NAME" },
            { key: "cron", title: "CRON" },
            { key: "tz", title: "TZ" },
            { key: "type", title: "JOB" },
            { key: "enabled", title: "ENABLED" },
            { key: "last", title: "LAST RUN", flex: true },
            { key: "next", title: "NEXT RUN (ITS ZONE)" },
          ],
          scheduleRows(ctx, l),
        ),
      );
    });

  schedules
    .command("set")
    .description("create or change a schedule (cron with seconds first: sec min hour day month weekday)")
    .argument("<name>", "schedule name")
    .argument("<cron>", 'cron expression, e.g. "0 */15 * * * *"')
    .option("--tz <zone>", "IANA time zone (default: the daemon's local time)")
    .option("--type <type>", "job type to enqueue (default: the schedule's name)")
    .addOption(new Option("--data <json>", "the job's payload as JSON").argParser(parseJsonArg))
    .addHelpText("after", '\nExamples:\n  $ teamwork schedules set cleanup "0 */30 * * * *"\n  $ teamwork schedules set weekly-report "0 0 9 * * MON" --tz Europe/Oslo --type report --data \'{"board":"web"}\'')
    .action(async (name: string, cron: string, o: { tz?: string; type?: string; data?: unknown }) => {
      const client = await ctx.client();
      const schedule = await client.schedules.set(name, { cron, timezone: o.tz, type: o.type, payload: o.data as never });
      ctx.out.result(schedule, (s) => ctx.out.line(`Schedule ${safe(s.name)}: ${safe(s.cron)} (${s.timezone !== null ? safe(s.timezone) : "local time"}), next run ${nextRun(s)}`));
    });

  for (const [verb, method, done] of [
    ["pause", "pause", "paused"],
    ["resume", "resume", "resumed"],
    ["rm", "remove", "removed"],
  ] as const) {
    schedules
      .command(verb)
      .description(`${verb === "rm" ? "remove" : verb} a schedule`)
      .argument("<name>", "schedule name")
      .action(async (name: string) => {
        const client = await ctx.client();
        const schedule = await client.schedules[method](name);
        ctx.out.result(schedule, (s) => ctx.out.line(`Schedule ${safe(s.name)} ${done}${verb === "resume" && s.nextRunAt ? `; next run ${nextRun(s)}` : ""}`));
      });
  }

  schedules
    .command("run")
    .description("run a schedule's job now (skipped if its previous run is still going)")
    .argument("<name>", "schedule name")
    .option("--watch", "follow the job until it ends")
    .action(async (name: string, o: { watch?: boolean }) => {
      const client = await ctx.client();
      const r = await client.schedules.run(name);
      if (o.watch && r.outcome === "enqueued") {
        if (!ctx.out.json) ctx.out.line(`Queued job ${r.job.id} (${safe(r.job.type)})`);
        exitForJob(await watchJob(ctx, client, r.job.id));
        return;
      }
      ctx.out.result(r, () => ctx.out.line(r.outcome === "enqueued" ? `Queued job ${r.job.id} (${safe(r.job.type)})` : `Skipped: job ${r.job.id} of ${safe(name)} is still ${r.job.status}`));
    });

  const cleanup = program.command("cleanup").description("the sweep of old files in the uploads temp folder");
  cleanup
    .command("stats")
    .description("folder, files and bytes removed (last run and total), last and next run")
    .action(async () => {
      const client = await ctx.client();
      const s = await client.schedules.cleanupStats();
      ctx.out.result(s, () => {
        ctx.out.line(`folder:     ${safe(s.folder)}`);
        ctx.out.line(`max age:    ${formatDuration(s.maxAgeMs)}`);
        ctx.out.line(`last run:   ${s.lastRun ? `${s.lastRun.at} (${ago(s.lastRun.at)}), removed ${count(s.lastRun.files, "file")}, ${bytes(s.lastRun.bytes)}` : "never"}`);
        ctx.out.line(`total:      ${count(s.total.files, "file")}, ${bytes(s.total.bytes)} in ${count(s.total.runs, "run")}`);
        ctx.out.line(`next run:   ${s.schedule?.nextRunAt ? `${s.schedule.nextRunAt} (${ago(s.schedule.nextRunAt)})` : s.schedule ? "paused" : "no schedule"}`);
      });
    });
  cleanup
    .command("run")
    .description("sweep now")
    .addOption(new Option("--older-than <duration>", "remove files older than this (default: cleanup.maxAge)").argParser((v: string) => (parseDurationArg(v), v)))
    .action(async (o: { olderThan?: string }) => {
      const client = await ctx.client();
      const payload: Json = o.olderThan === undefined ? {} : { olderThanMs: parseDuration(o.olderThan) };
      const { job, created } = await client.jobs.enqueue("cleanup", payload, { uniqueKey: "schedule:cleanup" });
      if (!created) {
        ctx.out.result(job, () => ctx.out.line(`a cleanup is already ${job.status} (job ${job.id})`));
        return;
      }
      const final = await watchJob(ctx, client, job.id);
      exitForJob(final);
      if (ctx.out.json) return;
      const r = final.result as { files: number; bytes: number } | null;
      if (r) ctx.out.line(`removed ${count(r.files, "file")} (${bytes(r.bytes)})`);
    });

  const digest = program.command("digest").description("the activity digest mailed to digest.recipients");
  digest
    .command("preview")
    .description("show exactly what the next digest will contain, without sending it")
    .action(async () => {
      const client = await ctx.client();
      const p = await client.schedules.digestPreview();
      ctx.out.result(p, () => {
        ctx.out.line(`To:      ${safe(p.recipients.join(", ")) || "(no recipients: set digest.recipients in config.json)"}`);
        ctx.out.line(`Subject: ${safe(p.subject)}`);
        ctx.out.line("");
        ctx.out.write(safe(p.text, { multiline: true }));
        if (!p.wouldSend) ctx.out.line(ctx.out.c.dim(`\n(would not be sent: ${p.recipients.length === 0 ? "no recipients" : "nothing happened and digest.sendEmpty is off"})`));
      });
    });
  digest
    .command("send")
    .description("send the digest now")
    .action(async () => {
      const client = await ctx.client();
      const r = await client.schedules.run("digest");
      if (r.outcome === "skipped") {
        ctx.out.result(r, () => ctx.out.line(`a digest is already ${r.job.status} (job ${r.job.id})`));
        return;
      }
      const final = await watchJob(ctx, client, r.job.id);
      exitForJob(final);
      if (ctx.out.json) return;
      const res = final.result as { sent?: boolean; reason?: string; recipients?: string[] } | null;
      if (res?.sent) ctx.out.line(`Digest sent to ${safe(res.recipients?.join(", ") ?? "")}`);
      else if (res) ctx.out.line(`Digest not sent: ${safe(String(res.reason))}`);
    });
}
