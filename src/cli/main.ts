// The program: global flags, the command groups, and the one top-level catch that turns
// every error into a message and a documented exit code. This file holds the only
// process.exit of the CLI.

import { Command, CommanderError, Option } from "commander";
import { TeamworkError } from "../lib/errors.js";
import { EXIT, exitCodeFor } from "../protocol/errors.js";
import { VERSION } from "../protocol/version.js";
import { CliContext } from "../commands/context.js";
import { registerDaemon } from "../commands/daemon.js";
import { registerTasks } from "../commands/tasks.js";
import { registerBoards } from "../commands/boards.js";
import { registerJobs } from "../commands/jobs.js";
import { registerEnqueue } from "../commands/enqueue.js";
import { registerSchedules } from "../commands/schedules.js";
import { registerCompletion } from "../commands/completion.js";
import { registerUploadAndNotify } from "../commands/mail.js";
import { registerQueue } from "../commands/queue.js";
import { addExamples } from "../commands/examples.js";

function buildProgram(): { program: Command; ctx: CliContext } {
  const program = new Command("teamwork");
  const ctx = new CliContext(program);
  program
    .description("A team's task board and the background work around it.")
    .version(VERSION, "-V, --version")
    .addOption(new Option("--home <dir>", "keep every file under this folder instead of the XDG folders").env("TEAMWORK_HOME"))
    .option("--json", "print machine-readable JSON only")
    .option("--no-autostart", "fail instead of starting the daemon when it is not running")
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  program.addHelpText(
    "after",
    `
Examples:
  $ teamwork tasks add "Write spec" --board default --assignee ana@example.com
  $ teamwork enqueue report --board default --watch
  $ teamwork jobs list

Exit codes: 0 ok, 1 failed, 2 bad usage or input, 3 daemon not reachable, 4 not found, 5 database too new.`,
  );
  registerDaemon(program, ctx);
  registerTasks(program, ctx);
  registerBoards(program, ctx);
  registerEnqueue(program, ctx);
  registerJobs(program, ctx);
  registerUploadAndNotify(program, ctx);
  registerQueue(program, ctx);
  registerSchedules(program, ctx);
  registerCompletion(program, ctx);
  addExamples(program);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return { program, ctx };
}

async function main(argv: string[]): Promise<number> {
  const { program, ctx } = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code)) return EXIT.ok;
      if (ctx.options.json) process.stdout.write(JSON.stringify({ error: { code: "invalid_input", message: err.message.replace(/^error: /, "") } }) + "\n");
      return EXIT.usage;
    }
    if (err instanceof TeamworkError) {
      if (ctx.options.json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } }) + "\n");
      else ctx.out.error(err.message, err.hint);
      return exitCodeFor(err.code);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (ctx.options.json) process.stdout.write(JSON.stringify({ error: { code: "internal", message } }) + "\n");
    else ctx.out.error(message, process.env.TEAMWORK_DEBUG ? (err as Error).stack : undefined);
    return EXIT.failed;
  }
}

process.on("SIGINT", () => process.exit(EXIT.interrupted));

main(process.argv).then((code) => {
  // Let stdout drain before exiting (pipes are asynchronous).
  process.stdout.write("", () => process.exit(code));
});
