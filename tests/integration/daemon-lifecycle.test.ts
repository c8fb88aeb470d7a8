// The daemon's lifecycle through the real binary, each test on a fresh temp home:
// start/status/stop, one daemon per home, auto-start, stale files after kill -9,
// socket permissions, a long home, signals, logs.

import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, runCli, runJson } from "../helpers/cli.js";
import { DAEMON, tempHome } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { resolvePaths } from "../../src/config/paths.js";
import type { DaemonStatus, Task } from "../../src/protocol/types.js";
import { Client } from "../../src/client/client.js";
import { TeamworkError } from "../../src/lib/errors.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

type Status = ({ running: true } & DaemonStatus) | { running: false; socket: string; home: string };

const homes: string[] = [];
/** A fresh home, stopped and removed after the test. */
function home(): string {
  const h = tempHome("tw-life-");
  homes.push(h);
  return h;
}

afterEach(async () => {
  // Newest first: a home nested in another is stopped before its parent is removed.
  const done = homes.splice(0).reverse();
  await Promise.all(done.map((h) => runCli(["daemon", "stop"], { home: h })));
  for (const h of done) rmSync(h, { recursive: true, force: true });
});

/** Whether a process exists and is not a zombie (a killed, detached daemon may stay a zombie until reaped). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** `teamwork daemon status --json`: what is under test. */
async function status(h: string): Promise<Status> {
  return (await runJson<Status>(["daemon", "status"], { home: h })).json;
}

/** The daemon's status straight from its socket (cheaper than a CLI run), or null when none answers. */
async function probe(h: string): Promise<DaemonStatus | null> {
  const client = new Client({ socket: resolvePaths({ home: h }).socket, timeoutMs: 5000 });
  try {
    return await client.call("daemonStatus", {});
  } catch (err) {
    if (err instanceof TeamworkError && err.code === "daemon_unreachable") return null;
    throw err;
  }
}

async function runningStatus(h: string): Promise<DaemonStatus> {
  const s = await probe(h);
  if (!s) throw new Error(`daemon on ${h} is not running`);
  return s;
}

describe("daemon start / status / stop", () => {
  it("start detaches, status shows it, a second start is refused, stop stops it", async () => {
    const h = home();
    const paths = resolvePaths({ home: h });

    const start = await runJson<{ pid: number; socket: string; home: string; logFile: string }>(["daemon", "start"], { home: h });
    expect(start.exitCode).toBe(0);
    expect(start.json).toEqual({ pid: expect.any(Number), socket: paths.socket, home: h, logFile: paths.logFile });
    // The CLI has exited: the daemon outlived it.
    expect(alive(start.json.pid)).toBe(true);

    const [st, human] = await Promise.all([status(h), runCli(["daemon", "status"], { home: h })]);
    expect(st).toMatchObject({
      running: true,
      pid: start.json.pid,
      version: VERSION,
      socket: paths.socket,
      home: h,
      database: join(h, "teamwork.db"),
      logFile: join(h, "daemon.log"),
      concurrency: 3,
      counts: { boards: 1, tasks: 0, jobs: { pending: 0, running: 0, complete: 0, failed: 0, cancelled: 0 } },
    });
    expect((st as DaemonStatus).uptimeMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse((st as DaemonStatus).startedAt)).not.toBeNaN();
    expect(existsSync(paths.pidFile)).toBe(true);
    expect(readFileSync(paths.pidFile, "utf8").trim()).toBe(String(start.json.pid));

    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain(`daemon running (pid ${start.json.pid})`);
    expect(human.stdout).toContain(`socket:      ${paths.socket}`);

    const second = await runCli(["daemon", "start"], { home: h });
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toMatch(/already running \(pid \d+\)/);
    expect(second.stderr).toContain(String(start.json.pid));
    // The first daemon is untouched.
    expect((await runningStatus(h)).pid).toBe(start.json.pid);

    const stop = await runJson<{ stopped: boolean; pid: number }>(["daemon", "stop"], { home: h });
    expect(stop.exitCode).toBe(0);
    expect(stop.json).toEqual({ stopped: true, pid: start.json.pid });
    expect(existsSync(paths.pidFile)).toBe(false);
    expect(existsSync(paths.socket)).toBe(false);
    await waitFor(() => !alive(start.json.pid), { what: "the daemon process to end" });
  });

  it("status when not running exits 3; --json gives running:false", async () => {
    const h = home();
    const [human, json] = await Promise.all([runCli(["daemon", "status"], { home: h }), runJson<Status>(["daemon", "status"], { home: h })]);
    expect(human.exitCode).toBe(3);
    expect(human.stdout).toMatch(/daemon not running/);
    expect(json.exitCode).toBe(3);
    expect(json.json).toMatchObject({ running: false });
    expect(json.json.running).toBe(false);
    // Asking did not start one.
    expect(existsSync(resolvePaths({ home: h }).socket)).toBe(false);
  });

  it("stop when not running says so and exits 0", async () => {
    const h = home();
    const r = await runJson<{ stopped: boolean; running: boolean }>(["daemon", "stop"], { home: h });
    expect(r.exitCode).toBe(0);
    expect(r.json).toEqual({ stopped: false, running: false });
  });
});

describe("auto-start", () => {
  it("a data command on a fresh home starts the daemon", async () => {
    const h = home();
    const r = await runJson<Task[]>(["tasks", "list"], { home: h });
    expect(r.exitCode).toBe(0);
    expect(r.json).toEqual([]);
    const st = await runningStatus(h);
    expect(st.home).toBe(h);
    expect(alive(st.pid)).toBe(true);
    // The next command reuses it.
    expect((await runJson(["tasks", "add", "second command"], { home: h })).exitCode).toBe(0);
    expect(await runningStatus(h)).toMatchObject({ pid: st.pid, counts: { tasks: 1 } });
  });

  it("--no-autostart fails with exit 3 and says how to start the daemon", async () => {
    const h = home();
    const r = await runCli(["tasks", "list", "--no-autostart"], { home: h });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("teamwork daemon start");
    expect(r.stdout).toBe("");
    expect(await probe(h)).toBeNull();
    expect(existsSync(resolvePaths({ home: h }).pidFile)).toBe(false);
  });

  it("TEAMWORK_NO_AUTOSTART=1 fails with exit 3 and says how to start the daemon", async () => {
    const h = home();
    const env = { TEAMWORK_NO_AUTOSTART: "1" };
    const [r, j] = await Promise.all([
      runCli(["tasks", "add", "not stored"], { home: h, env }),
      runJson<{ error: { code: string; message: string; hint?: string } }>(["tasks", "list"], { home: h, env }),
    ]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("teamwork daemon start");
    expect(j.exitCode).toBe(3);
    expect(j.json.error.code).toBe("daemon_unreachable");
    expect(`${j.json.error.message} ${j.json.error.hint ?? ""}`).toContain("teamwork daemon start");
    expect(await probe(h)).toBeNull();
  });
});

describe("crash recovery", () => {
  /**
   * A pid file naming a live process that is not a teamwork daemon (a recycled pid) must be
   * treated as stale. Runs the daemon entry directly: a refusal shows as its exit code 10 at
   * once, where a CLI would wait 15 s for it.
   */
  async function startsOverForeignPid(argv1: string): Promise<void> {
    const h = home();
    const paths = resolvePaths({ home: h });
    const foreign = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", argv1], { stdio: "ignore" });
    const daemon = { exit: undefined as number | null | undefined, pid: 0 };
    try {
      await waitFor(() => readFileSync(`/proc/${foreign.pid}/cmdline`, "utf8").includes(argv1), { what: "the foreign process to run" });
      mkdirSync(paths.runtimeDir, { recursive: true });
      chmodSync(paths.runtimeDir, 0o700);
      writeFileSync(paths.pidFile, `${foreign.pid}\n`);
      const child = spawn(process.execPath, [DAEMON, "--home", h], { stdio: "ignore", detached: true });
      child.unref();
      daemon.pid = child.pid!;
      child.on("exit", (code) => (daemon.exit = code));
      const outcome = await waitFor(
        async () => (daemon.exit !== undefined ? "exited" : (await probe(h))?.pid === daemon.pid ? "answered" : null),
        { timeoutMs: 10_000, what: "the daemon to answer or exit" },
      );
      expect(outcome, `the daemon exited with code ${daemon.exit} instead of clearing the stale pid file`).toBe("answered");
      expect(readFileSync(paths.pidFile, "utf8").trim()).toBe(String(daemon.pid));
    } finally {
      foreign.kill("SIGKILL");
    }
  }

  it("a pid file naming a live process that is not a daemon is stale", async () => {
    await startsOverForeignPid("sleeper");
  });

  it("a pid file naming a live non-teamwork process with 'daemon' in its command line is stale", async () => {
    // e.g. a crashed teamwork's pid recycled by `gpg-agent --daemon` or `dbus-daemon`.
    await startsOverForeignPid("some-other-daemon");
  });

  it("concurrent auto-starts on a fresh home converge on one daemon", async () => {
    const h = home();
    const results = await Promise.all(["one", "two", "three"].map((title) => runJson<Task>(["tasks", "add", title], { home: h })));
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    expect(new Set(results.map((r) => r.json.id)).size).toBe(3);
    const st = await runningStatus(h);
    expect(st.counts.tasks).toBe(3);
    expect(readFileSync(resolvePaths({ home: h }).pidFile, "utf8").trim()).toBe(String(st.pid));
  });

  it("after kill -9 the stale socket and pid file do not stop the next command", async () => {
    const h = home();
    const paths = resolvePaths({ home: h });
    const added = await runJson<Task>(["tasks", "add", "survives a crash"], { home: h });
    expect(added.exitCode).toBe(0);
    const first = await runningStatus(h);

    process.kill(first.pid, "SIGKILL");
    await waitFor(() => !alive(first.pid), { what: "the killed daemon to be gone" });
    // Until its last thread is gone the socket may still reset connections (probe throws): wait for a refusal.
    await waitFor(async () => (await probe(h)) === null, { what: "the dead daemon's socket to refuse connections" });
    // What a crash leaves behind.
    expect(existsSync(paths.socket)).toBe(true);
    expect(existsSync(paths.pidFile)).toBe(true);

    const list = await runJson<Task[]>(["tasks", "list"], { home: h });
    expect(list.exitCode, `${JSON.stringify(list.json)}\n${readFileSync(paths.logFile, "utf8")}`).toBe(0);
    expect(list.json.map((t) => t.id)).toEqual([added.json.id]);
    const second = await runningStatus(h);
    expect(second.pid).not.toBe(first.pid);
    expect(readFileSync(paths.pidFile, "utf8").trim()).toBe(String(second.pid));
    const log = readFileSync(paths.logFile, "utf8");
    expect(log).toMatch(/stale_pid_file/);
    expect(log).toMatch(/stale_socket_removed/);
  });

  it("after kill -9, `daemon start` starts a new daemon too", async () => {
    const h = home();
    const first = await runJson<{ pid: number }>(["daemon", "start"], { home: h });
    process.kill(first.json.pid, "SIGKILL");
    await waitFor(() => !alive(first.json.pid), { what: "the killed daemon to be gone" });
    await waitFor(async () => (await probe(h)) === null, { what: "the dead daemon's socket to refuse connections" });
    const again = await runJson<{ pid: number }>(["daemon", "start"], { home: h });
    expect(again.exitCode).toBe(0);
    expect(again.json.pid).not.toBe(first.json.pid);
    expect((await runningStatus(h)).pid).toBe(again.json.pid);
  });
});

describe("the socket's permissions and path", () => {
  it("the socket is 0600 and its folder 0700", async () => {
    const h = home();
    await runJson(["daemon", "start"], { home: h });
    const { socket } = await runningStatus(h);
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(dirname(socket)).mode & 0o777).toBe(0o700);
    expect(statSync(resolvePaths({ home: h }).pidFile).mode & 0o777).toBe(0o600);
  });

  it("a very long home still works: the socket moves under the temp folder", async () => {
    const h = home();
    const long = join(h, "a-rather-long-folder-name-for-a-home".repeat(3), "and-then-some-more");
    expect(Buffer.byteLength(join(long, "run", "daemon.sock"))).toBeGreaterThan(110);
    mkdirSync(long, { recursive: true });
    homes.push(long); // stopped (and removed) before its parent

    const added = await runJson<Task>(["tasks", "add", "long home"], { home: long });
    expect(added.exitCode).toBe(0);
    const st = await runningStatus(long);
    expect(st.home).toBe(long);
    expect(st.database).toBe(join(long, "teamwork.db"));
    expect(st.socket.startsWith(tmpdir() + "/")).toBe(true);
    expect(Buffer.byteLength(st.socket)).toBeLessThanOrEqual(107);
    expect(st.socket).toBe(resolvePaths({ home: long }).socket);
    expect(statSync(st.socket).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(st.socket)).mode & 0o777).toBe(0o700);

    const stop = await runCli(["daemon", "stop"], { home: long });
    expect(stop.exitCode).toBe(0);
    expect(existsSync(st.socket)).toBe(false);
  });
});

describe("signals", () => {
  it("SIGTERM to the daemon exits 0 and removes the socket and pid file", async () => {
    const h = home();
    const paths = resolvePaths({ home: h });
    // Attached (--foreground): the CLI reports the daemon's exit code as its own failure if it is not 0.
    const cli = spawn(process.execPath, [BIN, "daemon", "start", "--foreground"], {
      env: { ...process.env, TEAMWORK_HOME: h, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    cli.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    cli.stdout.resume();
    const cliExit = new Promise<number | null>((r) => cli.on("exit", (code) => r(code)));
    try {
      const st = await waitFor(() => probe(h), { timeoutMs: 15_000, what: "the foreground daemon" });
      expect(st.pid).not.toBe(cli.pid);

      process.kill(st.pid, "SIGTERM");
      expect(await cliExit).toBe(0);
      expect(existsSync(paths.socket)).toBe(false);
      expect(existsSync(paths.pidFile)).toBe(false);
      expect(alive(st.pid)).toBe(false);
      expect(stderr).toMatch(/daemon\.stopping.*received SIGTERM/);
      expect(stderr).toMatch(/daemon\.stopped/);
    } finally {
      if (cli.exitCode === null) cli.kill("SIGKILL");
    }
  });

  it("SIGTERM to a detached daemon removes its socket and pid file", async () => {
    const h = home();
    const paths = resolvePaths({ home: h });
    const { json } = await runJson<{ pid: number }>(["daemon", "start"], { home: h });
    process.kill(json.pid, "SIGTERM");
    await waitFor(() => !existsSync(paths.pidFile) && !existsSync(paths.socket), { what: "socket and pid file removed" });
    await waitFor(() => !alive(json.pid), { what: "the daemon to exit" });
    expect(readFileSync(paths.logFile, "utf8")).toMatch(/daemon\.stopped/);
  });
});

describe("daemon logs", () => {
  it("prints the log; -n limits the lines", async () => {
    const h = home();
    const { json } = await runJson<{ pid: number }>(["daemon", "start"], { home: h });
    const r = await runCli(["daemon", "logs"], { home: h });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/daemon\.started/);
    expect(r.stdout).toContain(`pid=${json.pid}`);
    await expect(new Client({ socket: resolvePaths({ home: h }).socket }).call("tasksGet", { id: 999 })).rejects.toThrow(/task 999 not found/); // logs a rejected request
    const one = await runCli(["daemon", "logs", "-n", "1"], { home: h });
    expect(one.exitCode).toBe(0);
    expect(one.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(one.stdout).toMatch(/task 999 not found/);
  });

  it("with no log yet it exits 4", async () => {
    const h = home();
    const r = await runCli(["daemon", "logs"], { home: h });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/no log yet/);
  });
});
