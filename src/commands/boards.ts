import type { Command } from "commander";
import type { CliContext } from "./context.js";
import { safe } from "../output/safe.js";

export function registerBoards(program: Command, ctx: CliContext): void {
  const boards = program.command("boards").description("list and add boards");

  boards
    .command("list")
    .alias("ls")
    .description("list boards with their task counts")
    .action(async () => {
      const client = await ctx.client();
      const list = await client.boards.list();
      ctx.out.result(list, (l) =>
        ctx.out.table(
          [
            { key: "name", title: "BOARD" },
            { key: "tasks", title: "TASKS", align: "right" },
            { key: "created", title: "CREATED" },
          ],
          l.map((b) => ({ name: safe(b.name), tasks: String(b.taskCount), created: b.createdAt })),
        ),
      );
    });

  boards
    .command("add")
    .description("add a board")
    .argument("<name>", "board name (letters, digits, . _ -)")
    .addHelpText("after", "\nExample:\n  $ teamwork boards add web")
    .action(async (name: string) => {
      const client = await ctx.client();
      const board = await client.boards.add(name);
      ctx.out.result(board, (b) => ctx.out.line(`Created board ${safe(b.name)}`));
    });
}
