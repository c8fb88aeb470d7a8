// `teamwork daemon install | uninstall`: a systemd user unit, so the daemon starts at login
// and restarts on failure. Without systemd, say so and explain the alternative.

import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { TeamworkError } from "../lib/errors.js";
import { DAEMON_ENTRY, DAEMON_NODE_FLAGS } from "../client/autostart.js";
import { DAEMON_EXIT_NO_RESTART } from "../protocol/daemon-exit.js";
import type { Paths } from "../config/paths.js";
import type { CliContext } from "./context.js";

export function unitName(paths: Paths): string {
  return paths.explicit ? `teamwork-${createHash("sha256").update(paths.home).digest("hex").slice(0, 8)}.service` : "teamwork.service";
}

function unitDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd", "user");
}

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;

/**
 * One argument of ExecStart= after the executable, written so that systemd splits, unquotes
 * and expands it back to exactly `arg` (systemd.service "Command lines", systemd.syntax
 * "Quoting"): `%` starts a specifier (`%h` is the user's home), so it is doubled; `$` starts
 * a variable, so it is doubled; blanks, quotes and backslashes are quoting, so such an
 * argument goes in double quotes with C escapes, and control characters (a newline would end
 * the directive) become `\xNN`.
 */
export function execArg(arg: string): string {
  const expanded = arg.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_./:@%$+=,-]+$/.test(expanded)) return expanded;
  return `"${expanded.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === "\\" || c === '"' ? `\\${c}` : hex(c)))}"`;
}

/** What systemd refuses in an executable's path, quoted or not ("Executable name contains special characters"): its string_is_safe(). */
const UNSAFE_EXECUTABLE = /["'\\\x00-\x1f\x7f]/;

/**
 * The whole ExecStart= value. The executable (the first word) differs from its arguments:
 * systemd expands `%` specifiers in it but not `$` variables (measured with systemd 252:
 * `$$` stays `$$` there), and refuses one with a quote, a backslash or a control character
 * outright. Node at such a path is run through /usr/bin/env, which takes it as an argument.
 */
export function execStart(argv: readonly string[]): string {
  let [exe, ...args] = argv;
  if (exe === undefined) throw new TeamworkError("internal", "no command for ExecStart=");
  if (UNSAFE_EXECUTABLE.test(exe)) {
    // env would read a word with "=" as a variable assignment, not as the command.
    if (exe.includes("=")) throw new TeamworkError("invalid_input", `systemd cannot run node from ${JSON.stringify(exe)}: the path holds a quote or backslash and an "="`, "install node at a plain path");
    args = [exe, ...args];
    exe = "/usr/bin/env";
  }
  const head = exe.replace(/%/g, "%%");
  return [/\s/.test(head) ? `"${head}"` : head, ...args.map(execArg)].join(" ");
}

/** Free text (Description=): specifiers doubled, control characters shown as `\xNN` so the text stays on its line. */
function unitText(text: string): string {
  return text.replace(/%/g, "%%").replace(/[\x00-\x1f\x7f]/g, hex);
}

/**
 * The unit runs the daemon attached (no --log-file), so its stdout and stderr, log lines
 * and a crash's last words included, go to the journal: `journalctl --user -u <name>`.
 * `daemon logs` reads the daemon's own file, which a daemon under systemd does not write.
 */
export function unitFile(paths: Paths, nodePath = process.execPath): string {
  const args = execStart([nodePath, ...DAEMON_NODE_FLAGS, DAEMON_ENTRY, ...(paths.explicit ? ["--home", paths.home] : [])]);
  const readme = pathToFileURL(join(DAEMON_ENTRY, "..", "..", "..", "README.md")).href;
  return `# Written by \`teamwork daemon install\`; remove with \`teamwork daemon uninstall\`.
[Unit]
Description=${unitText(`teamwork daemon (task board and background jobs) for ${paths.home}`)}
Documentation=${unitText(readme)}

[Service]
Type=simple
ExecStart=${args}
Restart=on-failure
RestartSec=2
# Exit codes a restart cannot fix (bad configuration, a database from a newer teamwork,
# another daemon on this home): stop instead of restarting every RestartSec.
RestartPreventExitStatus=${DAEMON_EXIT_NO_RESTART.join(" ")}
StandardOutput=journal
StandardError=journal
SyslogIdentifier=teamwork
# The daemon finishes running jobs within shutdownGrace on SIGTERM, then re-queues the rest.
KillSignal=SIGTERM
TimeoutStopSec=60
# No LimitNOFILE=: the daemon raises its soft limit of open files to the hard one as it
# starts (\`daemon status\` shows it), and a value above the hard limit the user manager
# allows would stop the unit from starting at all.

[Install]
WantedBy=default.target
`;
}

function hasSystemd(env: NodeJS.ProcessEnv = process.env): boolean {
  const onPath = (env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, "systemctl")));
  return onPath && existsSync("/run/systemd/system");
}

export function registerService(daemon: Command, ctx: CliContext): void {
  daemon
    .command("install")
    .description("write a systemd user unit so the daemon starts at login and restarts on failure")
    .option("--print", "only print the unit")
    .addHelpText("after", "\nExample:\n  $ teamwork daemon install && systemctl --user enable --now teamwork.service")
    .action((o: { print?: boolean }) => {
      const paths = ctx.paths;
      const name = unitName(paths);
      const content = unitFile(paths);
      if (o.print) {
        if (ctx.out.json) ctx.out.data({ name, content });
        else process.stdout.write(content);
        return;
      }
      const dir = unitDir();
      const file = join(dir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, content);
      const systemd = hasSystemd();
      ctx.out.result({ name, path: file, systemd }, () => {
        ctx.out.line(`wrote ${file}`);
        if (systemd) ctx.out.line(`enable it with:\n  systemctl --user daemon-reload && systemctl --user enable --now ${name}`);
        else {
          ctx.out.line("systemd does not run on this machine, so the unit will not be used here.");
          ctx.out.line("Instead, start the daemon from your login profile (`teamwork daemon start`), or let any");
          ctx.out.line("teamwork command start it on demand (auto-start); on macOS use a launchd agent.");
        }
      });
    });

  daemon
    .command("uninstall")
    .description("remove the systemd user unit written by `daemon install`")
    .action(() => {
      const name = unitName(ctx.paths);
      const file = join(unitDir(), name);
      const existed = existsSync(file);
      rmSync(file, { force: true });
      ctx.out.result({ name, path: file, removed: existed }, () => {
        if (!existed) return ctx.out.line(`no unit at ${file}; nothing to remove`);
        ctx.out.line(`removed ${file}`);
        if (hasSystemd()) ctx.out.line(`then: systemctl --user disable --now ${name}; systemctl --user daemon-reload`);
      });
    });
}
