import { Command } from "commander";
import type { QueueState } from "../protocol/types.js";
import type { CliContext } from "./context.js";
import { intOption } from "./context.js";

function describe(q: QueueState): string {
  const paused = q.paused.all ? "paused (all types)" : q.paused.types.length ? `running, paused for ${q.paused.types.join(", ")}` : "running";
  return `queue ${paused}; ${q.running} of ${q.concurrency} slots busy`;
}

export function registerQueue(program: Command, ctx: CliContext): void {
  const queue = program.command("queue").description("the queue as a whole: pause, resume, change the number of slots");

  queue
    .command("status")
    .description("paused or running, and slots busy")
    .action(async () => {
      const client = await ctx.client();
      const q = await client.call("queueGet", {});
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("pause")
    .description("start nothing new (all types, or one); running jobs finish; survives a restart")
    .argument("[type]", "only this job type")
    .addHelpText("after", "\nExamples:\n  $ teamwork queue pause            # everything\n  $ teamwork queue pause thumbnail  # one type")
    .action(async (type: string | undefined) => {
      const client = await ctx.client();
      const q = await client.call("queuePause", { type });
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("resume")
    .description("start jobs again (all types, or one)")
    .argument("[type]", "only this job type")
    .action(async (type: string | undefined) => {
      const client = await ctx.client();
      const q = await client.call("queueResume", { type });
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });

  queue
    .command("concurrency")
    .description("change the number of worker slots now (until the daemon restarts)")
    .argument("<n>", "slots, 1 to 64", intOption("slots", 1, 64))
    .addHelpText("after", "\nExample:\n  $ teamwork queue concurrency 6")
    .action(async (n: number) => {
      const client = await ctx.client();
      const q = await client.call("queueConcurrency", { concurrency: n });
      ctx.out.result(q, () => ctx.out.line(describe(q)));
    });
}
