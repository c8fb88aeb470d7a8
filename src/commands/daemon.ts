import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { Command, Option } from "commander";
import { TeamworkError } from "../lib/errors.js";
import { formatDuration } from "../lib/duration.js";
import { loadConfig } from "../config/config.js";
import { Client } from "../client/client.js";
import { DAEMON_ENTRY, DAEMON_NODE_FLAGS, isRunning, logTail, startDaemon } from "../client/autostart.js";
import { type CliContext, intOption } from "./context.js";
import { registerService } from "./service.js";
import { lazyImport } from "../lib/lazy-import.js";

export function registerDaemon(program: Command, ctx: CliContext): void {
  const daemon = program.command("daemon").description("start, stop and inspect the background daemon");

  daemon
    .command("start")
    .description("start the daemon (in the background unless --foreground)")
    .option("--foreground", "stay attached and log to stderr")
    .addOption(new Option("--concurrency <n>", "worker slots (jobs that run at once)").argParser(intOption("--concurrency", 1, 64)))
    .addHelpText("after", "\nExample:\n  $ teamwork daemon start --concurrency 4")
    .action(async (opts: { foreground?: boolean; concurrency?: number }) => {
      const paths = ctx.paths;
      const concurrency = opts.concurrency;
      loadConfig({ configFile: paths.configFile, flags: { concurrency } }); // fail early with exit 2
      const existing = await new Client({ socket: paths.socket, timeoutMs: 3000 }).call("health", {}).catch(() => null);
      if (existing) throw new TeamworkError("conflict", `daemon already running (pid ${existing.pid})`, "stop it first with `teamwork daemon stop`");
      if (opts.foreground) {
        const args = [...DAEMON_NODE_FLAGS, DAEMON_ENTRY, ...(paths.explicit ? ["--home", paths.home] : []), ...(concurrency ? ["--concurrency", String(concurrency)] : [])];
        const { spawn } = await lazyImport<typeof import("node:child_process")>("node:child_process");
        const child = spawn(process.execPath, args, { stdio: "inherit" });
        // Ctrl-C reaches the daemon from the terminal itself (same process group): forwarding
        // it too would be a second signal, which forces the daemon out without draining.
        process.removeAllListeners("SIGINT");
        process.on("SIGINT", () => {});
        process.on("SIGTERM", () => child.kill("SIGTERM"));
        const code = await new Promise<number>((r) => child.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
        if (code !== 0) throw new TeamworkError(code === 2 ? "invalid_input" : code === 5 ? "schema_too_new" : "internal", `the daemon exited with code ${code}`);
        return;
      }
      const pid = await startDaemon({ paths, concurrency });
      ctx.out.result({ pid, socket: paths.socket, home: paths.home, logFile: paths.logFile }, () =>
        ctx.out.line(`daemon started (pid ${pid}), socket ${paths.socket}`),
      );
    });

  daemon
    .command("stop")
    .description("stop the daemon gracefully (running jobs get a grace period)")
    .action(async () => {
      const paths = ctx.paths;
      const client = new Client({ socket: paths.socket, timeoutMs: 5000 });
      const health = await client.call("health", {}).catch(() => null);
      if (!health) {
        ctx.out.result({ stopped: false, running: false }, () => ctx.out.line("daemon not running"));
        return;
      }
      await client.call("daemonStop", {});
      const deadline = Date.now() + 120_000;
      while ((await isRunning(paths)) || existsSync(paths.pidFile)) {
        if (Date.now() > deadline) throw new TeamworkError("internal", `daemon (pid ${health.pid}) did not stop within 120s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      ctx.out.result({ stopped: true, pid: health.pid }, () => ctx.out.line(`daemon stopped (pid ${health.pid})`));
    });

  daemon
    .command("status")
    .description("show whether the daemon runs, and its pid, uptime, version, paths and counts")
    .action(async () => {
      const paths = ctx.paths;
      const client = new Client({ socket: paths.socket, timeoutMs: 5000 });
      let status;
      try {
        status = await client.call("daemonStatus", {});
      } catch (err) {
        // Refused for permissions is not "not running": that error says what it is.
        if (err instanceof TeamworkError && err.code === "daemon_unreachable" && !/permission denied/.test(err.message)) {
          if (ctx.out.json) ctx.out.data({ running: false, socket: paths.socket, home: paths.home });
          else ctx.out.line(`daemon not running (socket ${paths.socket})`);
          process.exitCode = 3;
          return;
        }
        throw err;
      }
      ctx.out.result({ running: true, ...status }, (s) => {
        const c = ctx.out.c;
        const j = s.counts.jobs;
        ctx.out.line(`${c.green("●")} daemon running (pid ${s.pid}), up ${formatDuration(s.uptimeMs)}, version ${s.version}`);
        ctx.out.line(`  home:        ${s.home}`);
        ctx.out.line(`  socket:      ${s.socket}`);
        ctx.out.line(`  database:    ${s.database} (durability ${s.durability})`);
        ctx.out.line(`  log:         ${s.logFile}`);
        ctx.out.line(`  slots:       ${s.concurrency}${s.paused.all ? c.yellow("   queue paused") : s.paused.types.length ? c.yellow(`   paused: ${s.paused.types.join(", ")}`) : ""}`);
        ctx.out.line(`  boards:      ${s.counts.boards}   tasks: ${s.counts.tasks}`);
        ctx.out.line(`  jobs:        ${j.pending} pending, ${j.running} running, ${j.complete} complete, ${j.failed} failed, ${j.cancelled} cancelled`);
      });
    });

  registerService(daemon, ctx);

  daemon
    .command("logs")
    .description("print the daemon's log")
    .addOption(new Option("-n, --lines <n>", "how many lines from the end").default(50).argParser(intOption("--lines", 1, 1_000_000)))
    .option("-f, --follow", "keep printing new lines as they come")
    .action(async (opts: { lines: number; follow?: boolean }) => {
      const file = ctx.paths.logFile;
      if (!existsSync(file)) throw new TeamworkError("not_found", `no log yet at ${file}`);
      const lines = opts.lines;
      const tail = logTail(file, lines);
      if (tail) process.stdout.write(tail + "\n");
      if (!opts.follow) return;
      let pos = statSync(file).size;
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        const size = existsSync(file) ? statSync(file).size : 0;
        if (size < pos) pos = 0; // rotated or truncated
        if (size > pos) {
          const fd = openSync(file, "r");
          const buf = Buffer.alloc(size - pos);
          readSync(fd, buf, 0, buf.length, pos);
          closeSync(fd);
          process.stdout.write(buf);
          pos = size;
        }
      }
    });
}
