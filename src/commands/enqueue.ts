import { Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../lib/duration.js";
import { invalid } from "../lib/errors.js";
import type { Job, Json } from "../protocol/types.js";
import { TeamworkError } from "../lib/errors.js";
import { saveDownload } from "./artifact.js";
import type { CliContext } from "./context.js";
import { safe } from "../output/safe.js";
import { intOption } from "./context.js";
import { parseJsonArg } from "./args.js";
import { exitForJob, watchJob } from "./watch.js";

export function parseDurationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function parseTimeArg(value: string): string {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value.trim()) || Number.isNaN(t)) {
    throw new InvalidArgumentError(`"${value}" is not a time; write it like 2026-12-01T09:00 (local) or 2026-12-01T09:00Z`);
  }
  return new Date(t).toISOString();
}

/** --board and --format are shorthands for payload fields; they merge into --data's object and win over its fields. */
export function withShorthands(data: Json | undefined, fields: Record<string, string | undefined>): Json | undefined {
  const given = Object.entries(fields).filter(([, v]) => v !== undefined) as [string, string][];
  if (given.length === 0) return data;
  if (data !== undefined && (typeof data !== "object" || data === null || Array.isArray(data))) {
    throw invalid(`${given.map(([k]) => `--${k}`).join(" and ")} need${given.length === 1 ? "s" : ""} --data to be a JSON object`);
  }
  return { ...(data ?? {}), ...Object.fromEntries(given) };
}

export function registerEnqueue(program: Command, ctx: CliContext): void {
  program
    .command("enqueue")
    .description("queue a background job and print its id at once")
    .argument("<type>", "job type (e.g. report)")
    .addOption(new Option("--data <json>", "the job's payload as JSON").argParser(parseJsonArg))
    .option("--board <board>", "shorthand for a payload field \"board\"")
    .option("--format <format>", "shorthand for a payload field \"format\" (report: html, md or json)")
    .option("--unique <key>", "return the live job with this key instead of queueing a second one")
    .addOption(new Option("--in <duration>", "start after this delay (e.g. 10m)").argParser(parseDurationArg).conflicts("at"))
    .addOption(new Option("--at <time>", "start at this time (e.g. 2026-12-01T09:00)").argParser(parseTimeArg))
    .addOption(new Option("--priority <p>", "higher runs first (-1000 to 1000)").argParser(intOption("--priority", -1000, 1000)))
    .addOption(new Option("--max-attempts <n>", "attempts before the job fails (1 to 100)").argParser(intOption("--max-attempts", 1, 100)))
    .option("--watch", "follow the job until it ends")
    .option("-o, --out <file>", "follow the job, then save the artifact it stored (a report) to this file")
    .addHelpText("after", "\nExamples:\n  $ teamwork enqueue report --board web --watch\n  $ teamwork enqueue report --board web --format md --out web.md\n  $ teamwork enqueue report --board web --format md --in 10m\n  $ teamwork enqueue report --data '{\"board\":\"web\",\"format\":\"json\"}'")
    .action(async (type: string, o: { data?: unknown; board?: string; format?: string; unique?: string; in?: number; at?: string; priority?: number; maxAttempts?: number; watch?: boolean; out?: string }) => {
      if (o.out !== undefined) o.watch = true;
      const payload = withShorthands(o.data as Json | undefined, { board: o.board, format: o.format });
      const client = await ctx.client();
      if (o.watch) client.willStream();
      const { job, created } = await client.jobs.enqueue(type, payload, { uniqueKey: o.unique, delay: o.in, runAt: o.at, priority: o.priority, maxAttempts: o.maxAttempts });
      if (o.watch) {
        if (!ctx.out.json) ctx.out.line(created ? `Queued job ${job.id} (${safe(job.type)})` : `Job ${job.id} with key "${safe(job.uniqueKey ?? "")}" is already ${job.status}`);
        const final = await watchJob(ctx, client, job.id);
        exitForJob(final);
        await deliverArtifact(ctx, final, o.out);
        return;
      }
      ctx.out.result(job, (j) => ctx.out.line(created ? `Queued job ${j.id} (${safe(j.type)})` : `Job ${j.id} with key "${safe(j.uniqueKey ?? "")}" is already ${j.status}; not queued again`));
    });
}

/**
 * After a watched job completed: where the artifact it stored is (it is in the database, not
 * on this host: a report may have been made by another node), and with --out, a copy of it
 * saved here.
 */
async function deliverArtifact(ctx: CliContext, job: Job, out: string | undefined): Promise<void> {
  const artifact = (job.result as { artifact?: unknown } | null)?.artifact;
  if (job.status !== "complete" || typeof artifact !== "string") {
    if (out !== undefined) throw new TeamworkError("not_found", `job ${job.id} stored no artifact to save to ${out}`);
    return;
  }
  if (out !== undefined) {
    const client = await ctx.client();
    await saveDownload(ctx, await client.jobs.artifact(job.id, artifact), out);
    return;
  }
  if (!ctx.out.json) ctx.out.line(`Stored ${safe(artifact)} in job ${job.id}; fetch it from any node with: teamwork jobs artifact ${job.id} -o ${safe(artifact)}`);
}
