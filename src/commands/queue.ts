import { Command } from "commander";
import type { QueueState } from "../protocol/types.js";
import type { CliContext } from "./context.js";
import { safe } from "../output/safe.js";
import { intOption } from "./context.js";
import { parseDurationArg } from "./enqueue.js";

function describe(q: QueueState): string {
  const paused = q.paused.all ? "paused (all types)" : q.paused.types.length ? `running, paused for ${q.paused.types.map((t) => safe(t)).join(", ")}` : "running";
  return `queue ${paused}; ${q.running} of ${q.concurrency} slots busy`;
}

export function registerQueue(program: Command, ctx: CliContext): void {
  const queue = program.command("queue").description("the queue as a whole: pause, resume, change the number of slots");

  queue
    .command("status")
    .description("paused or running, and slots busy")
    .action(async () => {
      const client = await ctx.client();
      const q = await client.queue.state();
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("pause")
    .description("start nothing new (all types, or one); running jobs finish; survives a restart")
    .argument("[type]", "only this job type")
    .addHelpText("after", "\nExamples:\n  $ teamwork queue pause            # everything\n  $ teamwork queue pause thumbnail  # one type")
    .action(async (type: string | undefined) => {
      const client = await ctx.client();
      const q = await client.queue.pause(type);
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("resume")
    .description("start jobs again (all types, or one)")
    .argument("[type]", "only this job type")
    .action(async (type: string | undefined) => {
      const client = await ctx.client();
      const q = await client.queue.resume(type);
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("concurrency")
    .description("change the number of worker slots now (until the daemon restarts)")
    .argument("<n>", "slots, 1 to 64", intOption("slots", 1, 64))
    .addHelpText("after", "\nExample:\n  $ teamwork queue concurrency 6")
    .action(async (n: number) => {
      const client = await ctx.client();
      const q = await client.queue.concurrency(n);
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  program
    .command("stats")
    .description("per job type: finished, failed, retried, run time, start latency; queue depth and slots")
    .option("--since <duration>", "window to count finished jobs in", (v: string) => (parseDurationArg(v), v), "24h")
    .addHelpText("after", "\nExamples:\n  $ teamwork stats --since 1h\n  $ curl --unix-socket SOCKET http://localhost/metrics   # the same, for Prometheus")
    .action(async (o: { since: string }) => {
      const client = await ctx.client();
      const s = await client.queue.stats({ since: o.since });
      ctx.out.result(s, () => {
        const ms = (v: number | null) => (v === null ? "-" : v < 1000 ? `${Math.round(v)}ms` : `${(v / 1000).toFixed(1)}s`);
        ctx.out.line(`since ${s.since}: ${s.queue.pending} pending (${s.queue.due} due), ${s.queue.running} of ${s.queue.concurrency} slots busy${s.queue.paused.all ? ", queue paused" : ""}`);
        if (s.types.length === 0) return ctx.out.line("no jobs finished in this window");
        ctx.out.table(
          [
            { key: "type", title: "TYPE" },
            { key: "finished", title: "FINISHED", align: "right" },
            { key: "failed", title: "FAILED", align: "right" },
            { key: "retried", title: "RETRIED", align: "right" },
            { key: "mean", title: "RUN MEAN", align: "right" },
            { key: "p95", title: "RUN P95", align: "right" },
            { key: "lat", title: "START P50/P95/P99", align: "right" },
          ],
          s.types.map((t) => ({
            type: safe(t.type),
            finished: String(t.finished),
            failed: t.failed ? ctx.out.c.red(String(t.failed)) : "0",
            retried: String(t.retried),
            mean: ms(t.runMs.mean),
            p95: ms(t.runMs.p95),
            lat: `${ms(t.startLatencyMs.p50)}/${ms(t.startLatencyMs.p95)}/${ms(t.startLatencyMs.p99)}`,
          })),
        );
      });
    });
}
