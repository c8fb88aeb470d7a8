import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { TeamworkError } from "../lib/errors.js";
import type { CliContext } from "./context.js";
import { parseId } from "./args.js";
import { exitForJob, watchJob } from "./watch.js";
import { summariseResult } from "../output/jobs.js";
import { safe } from "../output/safe.js";
import { formatBytes } from "../protocol/files.js";

const emailList = (value: string): string[] => {
  const list = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError("give at least one address, e.g. --to a@example.com,b@example.com");
  return list;
};

export function registerUploadAndNotify(program: Command, ctx: CliContext): void {
  program
    .command("upload")
    .description("store a file (optionally on a task) and thumbnail it in the background")
    .argument("<file>", "the file to upload")
    .option("--task <id>", "attach it to this task", parseId)
    .option("--watch", "follow the thumbnail job until it ends")
    .addHelpText("after", "\nExample:\n  $ teamwork upload ./screenshot.png --task 12 --watch")
    .action(async (file: string, o: { task?: number; watch?: boolean }) => {
      const path = resolve(file);
      if (!existsSync(path)) throw new TeamworkError("not_found", `file not found: ${file}`);
      const client = await ctx.client();
      const { upload, job } = await client.uploads.add(path, { taskId: o.task });
      if (o.watch && job) {
        if (!ctx.out.json) ctx.out.line(`Uploaded ${safe(upload.name)} as upload ${upload.id}; thumbnail job ${job.id}`);
        exitForJob(await watchJob(ctx, client, job.id));
        return;
      }
      ctx.out.result({ upload, job }, () => ctx.out.line(`Uploaded ${safe(upload.name)} as upload ${upload.id} (${formatBytes(upload.size)}, kept in the database)${job ? `; thumbnail job ${job.id} queued` : ""}`));
    });

  program
    .command("notify")
    .description("email people about a task, in the background (one message per recipient)")
    .argument("<task>", "task id", parseId)
    .requiredOption("--to <emails>", "comma-separated addresses", emailList)
    .option("--message <text>", "a note to include")
    .option("--watch", "follow the job until it ends")
    .addHelpText("after", '\nExample:\n  $ teamwork notify 12 --to ana@example.com,bo@example.com --message "Please review"')
    .action(async (taskId: number, o: { to: string[]; message?: string; watch?: boolean }) => {
      const client = await ctx.client();
      const { job } = await client.jobs.enqueue("notify", { taskId, to: o.to, ...(o.message !== undefined ? { message: o.message } : {}) });
      if (o.watch) {
        if (!ctx.out.json) ctx.out.line(`Queued job ${job.id} (notify)`);
        const final = await watchJob(ctx, client, job.id);
        exitForJob(final);
        return;
      }
      ctx.out.result(job, (j) => ctx.out.line(`Queued job ${j.id} (notify) for ${o.to.length} recipient${o.to.length === 1 ? "" : "s"}`));
    });
}

/** `tasks assign --wait`: a spinner until the assignment email is sent, then "Notification sent". */
export async function waitForNotification(ctx: CliContext, jobId: number): Promise<void> {
  const client = await ctx.client();
  const final = await watchJob(ctx, client, jobId);
  exitForJob(final);
  if (ctx.out.json) return;
  if (final.status === "complete") ctx.out.line(ctx.out.c.green(`Notification sent${final.result ? ` (${summariseResult(final.result)})` : ""}`));
  else ctx.out.line(ctx.out.c.red(`Notification not sent: ${safe(final.error ?? final.status)}`));
}
