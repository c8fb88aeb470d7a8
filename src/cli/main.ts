// The program: global flags, the command groups, and the one top-level catch that turns
// every error into a message and a documented exit code. This file holds the only
// process.exit of the CLI, and decides what a failed write to stdout means.

import { Command, CommanderError, Option } from "commander";
import { TeamworkError } from "../lib/errors.js";
import { EXIT, exitCodeFor } from "../protocol/errors.js";
import { VERSION } from "../protocol/version.js";
import { CliContext, durationOption } from "../commands/context.js";
import { registerDaemon } from "../commands/daemon.js";
import { registerTasks } from "../commands/tasks.js";
import { registerBoards } from "../commands/boards.js";
import { registerJobs } from "../commands/jobs.js";
import { registerEnqueue } from "../commands/enqueue.js";
import { registerSchedules } from "../commands/schedules.js";
import { registerCompletion } from "../commands/completion.js";
import { registerUploadAndNotify } from "../commands/mail.js";
import { registerQueue } from "../commands/queue.js";
import { registerNodes } from "../commands/nodes.js";
import { addExamples } from "../commands/examples.js";
import { outputFailureMessage } from "../output/output.js";
import { safe, toJson } from "../output/safe.js";

function buildProgram(): { program: Command; ctx: CliContext } {
  const program = new Command("teamwork");
  const ctx = new CliContext(program);
  program
    .description("A team's task board and the background work around it.")
    .version(VERSION, "-V, --version")
    .addOption(new Option("--home <dir>", "keep every file under this folder instead of the XDG folders").env("TEAMWORK_HOME"))
    .option("--json", "print machine-readable JSON only")
    .option("--no-autostart", "fail instead of starting the daemon when it is not running")
    .addOption(new Option("--timeout <duration>", "give up on a daemon that does not answer within this time (exit 3)").env("TEAMWORK_TIMEOUT").argParser(durationOption("--timeout", 100, 3_600_000)))
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    // Commander's own errors echo what was typed (an unknown command, a bad value).
    .configureOutput({ outputError: (text, write) => write(safe(text, { multiline: true })) });
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
  registerNodes(program, ctx);
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
      if (ctx.options.json) process.stdout.write(toJson({ error: { code: "invalid_input", message: err.message.replace(/^error: /, "") } }) + "\n");
      return EXIT.usage;
    }
    if (err instanceof TeamworkError) {
      if (ctx.options.json) process.stdout.write(toJson({ error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } }) + "\n");
      else ctx.out.error(err.message, err.hint);
      return exitCodeFor(err.code);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (ctx.options.json) process.stdout.write(toJson({ error: { code: "internal", message } }) + "\n");
    else ctx.out.error(message, process.env.TEAMWORK_DEBUG ? (err as Error).stack : undefined);
    return EXIT.failed;
  }
}

/**
 * A write to stdout failed. Output that cannot be written is a failed command (exit 1, the
 * reason on stderr), except when the reader went away (EPIPE): that ends the command quietly
 * with exit 0 (or the code it had already settled on), as `| head` expects, even one that
 * would print for ever (`jobs logs -f`).
 */
function onOutputError(err: NodeJS.ErrnoException): void {
  const message = outputFailureMessage(err);
  if (message === null) process.exit(process.exitCode === undefined ? EXIT.ok : Number(process.exitCode));
  process.stderr.write(`error: ${message}\n`);
  process.exit(EXIT.failed);
}

process.stdout.on("error", onOutputError);
process.stderr.on("error", () => {}); // nowhere left to report to; the exit code still tells
process.on("SIGINT", () => process.exit(EXIT.interrupted));

main(process.argv).then((code) => {
  // Exit once stdout has taken everything (pipes can be asynchronous); a write that failed
  // comes back here or as an 'error' event, and either way decides the exit code.
  process.stdout.write("", (err) => (err ? onOutputError(err) : process.exit(code)));
});
