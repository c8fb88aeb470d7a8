// One example for every command that does not carry its own (those add theirs where they
// are defined), so that every --help
// teaches by showing. Keyed by the command's path.

import type { Command } from "commander";

const EXAMPLES: Record<string, string[]> = {
  daemon: ["teamwork daemon status"],
  "daemon stop": ["teamwork daemon stop"],
  "daemon status": ["teamwork daemon status --json"],
  "daemon logs": ["teamwork daemon logs -n 100 --follow"],
  "daemon uninstall": ["teamwork daemon uninstall"],
  tasks: ["teamwork tasks list --board web"],
  "tasks done": ["teamwork tasks done 12"],
  "tasks rm": ["teamwork tasks rm 12"],
  boards: ["teamwork boards add web"],
  "boards list": ["teamwork boards list"],
  jobs: ["teamwork jobs list --status failed"],
  "jobs show": ["teamwork jobs show 42"],
  "jobs status": ["teamwork jobs status 42"],
  "jobs retry": ["teamwork jobs retry 42"],
  "jobs prune": ["teamwork jobs prune --older-than 3d"],
  queue: ["teamwork queue pause"],
  "queue status": ["teamwork queue status --json"],
  "queue resume": ["teamwork queue resume thumbnail"],
  schedules: ["teamwork schedules list"],
  "schedules list": ["teamwork schedules list --json"],
  "schedules pause": ["teamwork schedules pause digest"],
  "schedules resume": ["teamwork schedules resume digest"],
  "schedules run": ["teamwork schedules run cleanup --watch"],
  "schedules rm": ["teamwork schedules rm weekly-report"],
  cleanup: ["teamwork cleanup stats"],
  "cleanup stats": ["teamwork cleanup stats --json"],
  "cleanup run": ["teamwork cleanup run --older-than 1h"],
  digest: ["teamwork digest preview"],
  "digest preview": ["teamwork digest preview"],
  "digest send": ["teamwork digest send"],
};

export function addExamples(program: Command): void {
  const visit = (c: Command, path: string[]) => {
    const key = path.join(" ");
    const examples = EXAMPLES[key];
    if (examples) c.addHelpText("after", `\n${examples.length > 1 ? "Examples" : "Example"}:\n${examples.map((e) => `  $ ${e}`).join("\n")}`);
    for (const sub of c.commands) visit(sub, [...path, sub.name()]);
  };
  for (const c of program.commands) visit(c, [c.name()]);
}
