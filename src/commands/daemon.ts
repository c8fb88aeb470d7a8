import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { Command, Option } from "commander";
import { TeamworkError } from "../lib/errors.js";
import { formatDuration } from "../lib/duration.js";
import { loadConfig } from "../config/config.js";
import type { Paths } from "../config/paths.js";
import { Client, NotAnswering } from "../client/client.js";
import { TeamworkClient } from "../client/teamwork.js";
import { DAEMON_ENTRY, DAEMON_NODE_FLAGS, isRunning, lockHolderOf, logTail, startDaemon, stoppedUnexpectedly, stoppedUnexpectedlyError } from "../client/autostart.js";
import { type CliContext, intOption } from "./context.js";
import { registerService } from "./service.js";
import { lazyImport } from "../lib/lazy-import.js";
import { DAEMON_EXIT, errorCodeForDaemonExit } from "../protocol/daemon-exit.js";

/**
 * The daemon's health if one answers. A daemon that holds the lock but does not answer yet
 * (just started) gets a few seconds; one that still does not is an error, never "not running".
 */
async function answeringDaemon(client: TeamworkClient, paths: Paths) {
  // One that takes the connection and says nothing is not waited on again (--timeout).
  const noAnswer = (err: unknown) => {
    if (err instanceof NotAnswering) throw err;
    return null;
  };
  const health = await client.daemon.health().catch(noAnswer);
  if (health) return health;
  const deadline = Date.now() + 5000;
  for (let holder = await lockHolderOf(paths); holder; holder = await lockHolderOf(paths)) {
    const h = await client.daemon.health().catch(noAnswer);
    if (h) return h;
    if (Date.now() > deadline) {
      const pid = holder.pid ?? "unknown";
      throw new TeamworkError("daemon_unreachable", `a daemon (pid ${pid}) holds this home but does not answer on its socket ${paths.socket}`, `if it stays so, end it with \`kill ${pid}\``);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

export function registerDaemon(program: Command, ctx: CliContext): void {
  /** A client that never starts a daemon, and waits --timeout for an answer. */
  const plainClient = () => new TeamworkClient(new Client({ socket: ctx.paths.socket, pidFile: ctx.paths.pidFile, timeoutMs: ctx.options.timeoutMs }));
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
      const existing = await plainClient()
        .daemon.health()
        .catch((err: unknown) => {
          if (err instanceof NotAnswering) throw err; // there is one, frozen
          return null;
        });
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
        if (code !== DAEMON_EXIT.ok) throw new TeamworkError(errorCodeForDaemonExit(code, "internal"), `the daemon exited with code ${code}`);
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
      const client = plainClient();
      const health = await answeringDaemon(client, paths);
      if (!health) {
        ctx.out.result({ stopped: false, running: false }, () => ctx.out.line("daemon not running"));
        return;
      }
      await client.daemon.stop();
      // Stopped when its lock is free: the kernel frees it only when the process is gone.
      const deadline = Date.now() + 120_000;
      while ((await isRunning(paths)) || (await lockHolderOf(paths))) {
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
      const client = plainClient();
      let status;
      try {
        status = await client.daemon.status();
      } catch (err) {
        // Took the connection and said nothing within --timeout: running, not answering.
        if (err instanceof NotAnswering) {
          if (ctx.out.json) ctx.out.data({ running: true, responding: false, pid: err.pid ?? "unknown", socket: paths.socket, home: paths.home });
          else ctx.out.error(err.message, err.hint);
          process.exitCode = 3;
          return;
        }
        // Refused for permissions is not "not running": that error says what it is.
        if (err instanceof TeamworkError && err.code === "daemon_unreachable" && !/permission denied/.test(err.message)) {
          // No answer is not "not running": a daemon holding the lock runs (starting, hung, or its socket removed).
          const holder = await lockHolderOf(paths);
          if (holder) {
            const pid = holder.pid ?? "unknown";
            if (ctx.out.json) ctx.out.data({ running: true, responding: false, pid, socket: paths.socket, home: paths.home });
            else ctx.out.line(`daemon running (pid ${pid}) but not answering on its socket ${paths.socket}`);
            process.exitCode = 3;
            return;
          }
          const crashed = await stoppedUnexpectedly(paths);
          if (ctx.out.json) ctx.out.data({ running: false, socket: paths.socket, home: paths.home, ...(crashed !== null ? { stoppedUnexpectedly: true, pid: crashed, logFile: paths.logFile } : {}) });
          else if (crashed !== null) ctx.out.line(`daemon not running: ${stoppedUnexpectedlyError(paths, crashed).message}`);
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
        ctx.out.line(`  database:    ${s.store === "postgres" ? "PostgreSQL " : ""}${s.database} (durability ${s.durability})`);
        if (s.store === "postgres" && s.node) ctx.out.line(`  node:        ${s.node}`);
        ctx.out.line(`  log:         ${s.logFile}`);
        ctx.out.line(`  slots:       ${s.concurrency}${s.paused.all ? c.yellow("   queue paused") : s.paused.types.length ? c.yellow(`   paused: ${s.paused.types.join(", ")}`) : ""}`);
        if (s.isolation?.processTypes.length) ctx.out.line(`  processes:   ${s.isolation.processTypes.join(", ")} (memory cap by ${s.isolation.memoryCap})`);
        if (s.openFiles) ctx.out.line(`  open files:  ${s.openFiles.soft !== s.openFiles.hard ? c.yellow(s.openFiles.summary) : s.openFiles.summary}`);
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
      // Followed from the file open now, to the byte the tail ends at: a rotation right after
      // the tail is printed is followed into the new file, not skipped over by its size.
      const fd = opts.follow ? openSync(file, "r") : null;
      const size = fd === null ? 0 : fstatSync(fd).size;
      const tail = logTail(file, lines);
      if (tail) process.stdout.write(tail + "\n");
      if (fd === null) return;
      await followLog(file, fd, size);
    });
}

/**
 * Prints what is appended to the log from byte `from` on, for ever, following it by name
 * across rotations (as `tail -F`): the renamed file is read to its end, then the new one
 * from its first byte. Bytes are copied as they are, never decoded here, so a character or
 * a line cut between two reads reaches the terminal whole.
 */
async function followLog(file: string, opened: number, from: number): Promise<never> {
  let fd = opened;
  let pos = from;
  const drain = async () => {
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return;
      pos += n;
      if (!process.stdout.write(buf.subarray(0, n))) await new Promise((r) => process.stdout.once("drain", r));
    }
  };
  for (;;) {
    await drain();
    const named = statSync(file, { throwIfNoEntry: false }); // absent between a rotation's rename and the new file
    if (named && named.ino !== fstatSync(fd).ino) {
      await drain(); // what was written before the rename
      closeSync(fd);
      fd = openSync(file, "r");
      pos = 0;
      continue;
    }
    if (fstatSync(fd).size < pos) pos = 0; // truncated in place (copytruncate)
    await new Promise((r) => setTimeout(r, 200));
  }
}
