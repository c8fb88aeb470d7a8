import { Command, Option } from "commander";
import type { Task } from "../protocol/types.js";
import { TASK_STATUSES } from "../protocol/types.js";
import { formatBytes } from "../protocol/files.js";
import { ago, safe } from "../output/output.js";
import type { CliContext } from "./context.js";
import { intOption } from "./context.js";
import { parseId } from "./args.js";
import { waitForNotification } from "./mail.js";

const statusOption = () => new Option("--status <status>", "todo, doing or done").choices(TASK_STATUSES);

function taskRows(ctx: CliContext, tasks: Task[]) {
  const c = ctx.out.c;
  const today = new Date().toISOString().slice(0, 10);
  return tasks.map((t) => ({
    id: String(t.id),
    status: t.status === "done" ? c.green(t.status) : t.status === "doing" ? c.cyan(t.status) : t.status,
    title: safe(t.title),
    board: safe(t.board),
    assignee: t.assignee !== null ? safe(t.assignee) : c.dim("-"),
    due: t.dueDate ? (t.status !== "done" && t.dueDate < today ? c.red(t.dueDate) : t.dueDate) : c.dim("-"),
  }));
}

export function printTask(ctx: CliContext, t: Task): void {
  const c = ctx.out.c;
  ctx.out.line(`${c.bold(`#${t.id}`)} ${safe(t.title)}`);
  ctx.out.line(`  board:     ${safe(t.board)}`);
  ctx.out.line(`  status:    ${t.status}${t.completedAt ? ` (completed ${ago(t.completedAt)})` : ""}`);
  ctx.out.line(`  assignee:  ${t.assignee !== null ? safe(t.assignee) : "-"}`);
  ctx.out.line(`  due:       ${t.dueDate ?? "-"}`);
  ctx.out.line(`  created:   ${t.createdAt} (${ago(t.createdAt)})`);
  ctx.out.line(`  updated:   ${t.updatedAt} (${ago(t.updatedAt)})`);
  if (t.description) ctx.out.line(`\n  ${safe(t.description, { multiline: true }).split("\n").join("\n  ")}`);
}

export function registerTasks(program: Command, ctx: CliContext): void {
  const tasks = program.command("tasks").description("the task board: add, list, show, edit, complete, assign, remove tasks");

  tasks
    .command("add")
    .description("add a task")
    .argument("<title>", "what is to be done")
    .option("--board <board>", "board name", "default")
    .option("--assignee <email>", "who does it")
    .option("--due <date>", "due date, YYYY-MM-DD")
    .option("--description <text>", "longer description")
    .addOption(statusOption())
    .addHelpText("after", '\nExample:\n  $ teamwork tasks add "Write spec" --board web --assignee ana@example.com --due 2026-12-01')
    .action(async (title: string, o: { board: string; assignee?: string; due?: string; description?: string; status?: Task["status"] }) => {
      const client = await ctx.client();
      const task = await client.tasks.add({ title, board: o.board, assignee: o.assignee, dueDate: o.due, description: o.description, status: o.status });
      ctx.out.result(task, (t) => ctx.out.line(`Created task ${t.id} on board ${safe(t.board)}: ${safe(t.title)}`));
    });

  tasks
    .command("list")
    .alias("ls")
    .description("list tasks")
    .option("--board <board>", "only this board")
    .addOption(statusOption())
    .option("--assignee <email>", "only tasks assigned to this address")
    .addOption(new Option("--limit <n>", "at most this many").argParser(intOption("--limit", 1, 100_000)))
    .addHelpText("after", "\nExample:\n  $ teamwork tasks list --board web --status todo")
    .action(async (o: { board?: string; status?: Task["status"]; assignee?: string; limit?: number }) => {
      const client = await ctx.client();
      const list = await client.tasks.list({ board: o.board, status: o.status, assignee: o.assignee, limit: o.limit });
      ctx.out.result(list, (l) => {
        if (l.length === 0) return ctx.out.line("no tasks");
        ctx.out.table(
          [
            { key: "id", title: "ID", align: "right" },
            { key: "status", title: "STATUS" },
            { key: "title", title: "TITLE", flex: true },
            { key: "board", title: "BOARD" },
            { key: "assignee", title: "ASSIGNEE" },
            { key: "due", title: "DUE" },
          ],
          taskRows(ctx, l),
        );
      });
    });

  tasks
    .command("show")
    .description("show one task and its history")
    .argument("<id>", "task id", parseId)
    .addHelpText("after", "\nExample:\n  $ teamwork tasks show 12")
    .action(async (id: number) => {
      const client = await ctx.client();
      const { task, attachments, events } = await client.tasks.show(id);
      ctx.out.result({ ...task, attachments, events }, () => {
        printTask(ctx, task);
        if (attachments.length) {
          ctx.out.line("\n  attachments:");
          for (const a of attachments) {
            const thumb =
              a.thumbnail.status === "ready"
                ? a.thumbnail.file
                  ? `thumbnail ${formatBytes(a.thumbnail.file.size)} ${safe(a.thumbnail.file.mediaType)}${a.thumbnail.jobId !== null ? ` (job ${a.thumbnail.jobId})` : ""}`
                  : `thumbnail ${safe(a.thumbnail.path ?? "")}`
                : a.thumbnail.status === "failed"
                  ? ctx.out.c.red(`preview unavailable: ${safe(a.thumbnail.error ?? "")}`)
                  : "thumbnail pending";
            ctx.out.line(`    #${a.id} ${safe(a.name)} (${a.size} bytes) ${thumb}`);
          }
        }
        if (events.length) {
          ctx.out.line("\n  history:");
          for (const e of events) ctx.out.line(`    ${e.createdAt}  ${e.type}${e.type === "assigned" ? ` to ${safe(String(e.data.assignee))}` : ""}`);
        }
      });
    });

  tasks
    .command("edit")
    .description("change a task's fields")
    .argument("<id>", "task id", parseId)
    .option("--title <title>", "new title")
    .option("--board <board>", "move to this board")
    .option("--description <text>", "new description")
    .option("--assignee <email>", "assign to this address")
    .option("--unassign", "remove the assignee")
    .option("--due <date>", "due date, YYYY-MM-DD")
    .option("--clear-due", "remove the due date")
    .addOption(statusOption())
    .addHelpText("after", '\nExample:\n  $ teamwork tasks edit 12 --title "Write the spec" --status doing')
    .action(async (id: number, o: { title?: string; board?: string; description?: string; assignee?: string; unassign?: boolean; due?: string; clearDue?: boolean; status?: Task["status"] }) => {
      const client = await ctx.client();
      const task = await client.tasks.edit(id, {
        title: o.title,
        board: o.board,
        description: o.description,
        assignee: o.unassign ? null : o.assignee,
        dueDate: o.clearDue ? null : o.due,
        status: o.status,
      });
      ctx.out.result(task, (t) => ctx.out.line(`Updated task ${t.id}: ${safe(t.title)}`));
    });

  tasks
    .command("done")
    .description("mark a task done")
    .argument("<id>", "task id", parseId)
    .action(async (id: number) => {
      const client = await ctx.client();
      const task = await client.tasks.done(id);
      ctx.out.result(task, (t) => ctx.out.line(`Task ${t.id} done: ${safe(t.title)}`));
    });

  tasks
    .command("assign")
    .description("assign a task to someone")
    .argument("<id>", "task id", parseId)
    .argument("<email>", "assignee's email address")
    .option("--wait", "wait until the assignment email is sent")
    .addHelpText("after", "\nExample:\n  $ teamwork tasks assign 12 ana@example.com --wait")
    .action(async (id: number, email: string, o: { wait?: boolean }) => {
      const client = await ctx.client();
      const { task, job } = await client.tasks.assign(id, email);
      if (o.wait && job) {
        if (!ctx.out.json) ctx.out.line(`Assigned task ${task.id} to ${safe(task.assignee ?? "")}; sending the notification (job ${job.id})`);
        return waitForNotification(ctx, job.id);
      }
      ctx.out.result({ ...task, job }, () => ctx.out.line(`Assigned task ${task.id} to ${safe(task.assignee ?? "")}${job ? `; notification queued (job ${job.id})` : ""}`));
    });

  tasks
    .command("rm")
    .alias("remove")
    .description("delete a task (its history stays in the event log)")
    .argument("<id>", "task id", parseId)
    .action(async (id: number) => {
      const client = await ctx.client();
      const task = await client.tasks.remove(id);
      ctx.out.result(task, (t) => ctx.out.line(`Deleted task ${t.id}: ${safe(t.title)}`));
    });
}
