// `teamwork daemon install | uninstall`: a systemd user unit, so the daemon starts at login
// and restarts on failure. Without systemd, say so and explain the alternative.

import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import type { Command } from "commander";
import { DAEMON_ENTRY, DAEMON_NODE_FLAGS } from "../client/autostart.js";
import type { Paths } from "../config/paths.js";
import type { CliContext } from "./context.js";

export function unitName(paths: Paths): string {
  return paths.explicit ? `teamwork-${createHash("sha256").update(paths.home).digest("hex").slice(0, 8)}.service` : "teamwork.service";
}

function unitDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd", "user");
}

const quote = (s: string) => (/^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, "\\$1")}"`);

export function unitFile(paths: Paths, nodePath = process.execPath): string {
  const args = [nodePath, ...DAEMON_NODE_FLAGS, DAEMON_ENTRY, ...(paths.explicit ? ["--home", paths.home] : []), "--log-file", paths.logFile].map(quote).join(" ");
  return `# Written by \`teamwork daemon install\`; remove with \`teamwork daemon uninstall\`.
[Unit]
Description=teamwork daemon (task board and background jobs) for ${paths.home}
Documentation=file://${join(DAEMON_ENTRY, "..", "..", "..", "README.md")}

[Service]
Type=simple
ExecStart=${args}
Restart=on-failure
RestartSec=2
# The daemon finishes running jobs within shutdownGrace on SIGTERM, then re-queues the rest.
KillSignal=SIGTERM
TimeoutStopSec=60

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
