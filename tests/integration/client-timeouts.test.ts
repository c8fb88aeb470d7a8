// A frozen daemon (issue 18 item 6): a real daemon stopped with SIGSTOP takes connections
// and answers nothing. The CLI gives up after --timeout (TEAMWORK_TIMEOUT) with "the daemon
// (pid N) is not answering" and exit 3, the RPC upgrade and HTTP streams included; `jobs
// watch` says it lost the daemon and keeps trying until it answers again.

import { spawn } from "node:child_process";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BIN, runCli, runJson } from "../helpers/cli.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { Client, NotAnswering } from "../../src/client/client.js";
import { connect } from "../../src/client/autostart.js";
import { TeamworkError } from "../../src/lib/errors.js";

let d: TestDaemon;
let frozen = false;
const freeze = () => {
  process.kill(d.pid, "SIGSTOP");
  frozen = true;
};
const thaw = () => {
  if (frozen) process.kill(d.pid, "SIGCONT");
  frozen = false;
};

beforeAll(async () => {
  d = await startDaemon({ config: { concurrency: 1 } });
});
afterEach(() => thaw());
afterAll(async () => {
  thaw();
  await d?.cleanup();
});

/** What a CLI run must show against the frozen daemon. */
const notAnswering = () => new RegExp(`the daemon \\(pid ${d.pid}\\) is not answering`);

describe("a daemon stopped with SIGSTOP", () => {
  it("tasks list gives up after TEAMWORK_TIMEOUT with exit 3, naming the daemon's pid", async () => {
    freeze();
    const t0 = Date.now();
    const r = await runCli(["tasks", "list"], { home: d.home, env: { TEAMWORK_TIMEOUT: "1s" } });
    const took = Date.now() - t0;
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(notAnswering());
    expect(r.stderr).toMatch(/no reply within 1s/);
    // The timeout plus the CLI's own start; never the old 60 s, nor for ever.
    expect(took).toBeLessThan(6_000);
  });

  it("daemon status gives up the same way (--timeout flag), and says so under --json", async () => {
    freeze();
    const t0 = Date.now();
    const r = await runCli(["daemon", "status", "--timeout", "1s"], { home: d.home });
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(notAnswering());

    const j = await runJson<{ running: boolean; responding: boolean; pid: number }>(["daemon", "status"], { home: d.home, env: { TEAMWORK_TIMEOUT: "500ms" } });
    expect(j.exitCode).toBe(3);
    expect(j.json).toMatchObject({ running: true, responding: false, pid: d.pid });
  });

  it("a write says it may or may not have been made, and starts no second daemon", async () => {
    freeze();
    const r = await runCli(["tasks", "add", "never", "--board", "default"], { home: d.home, env: { TEAMWORK_TIMEOUT: "1s" } });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(notAnswering());
    expect(r.stderr).toMatch(/may or may not have been made/);
    thaw();
    // Still the one daemon: auto-start was not tried on a daemon that is there.
    expect((await d.client.call("health", {})).pid).toBe(d.pid);
  });

  it("an HTTP event stream that never opens fails within the timeout", async () => {
    freeze();
    const client = new Client({ socket: d.paths.socket, pidFile: d.paths.pidFile, timeoutMs: 500 });
    try {
      const t0 = Date.now();
      const stream = client.stream("eventsStream", {}, () => {});
      const err = await stream.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NotAnswering);
      expect((err as NotAnswering).pid).toBe(d.pid);
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      client.close();
    }
  });

  it("a bad --timeout is a usage error", async () => {
    const r = await runCli(["tasks", "list", "--timeout", "soon"], { home: d.home });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--timeout/);
  });

  it("jobs watch says it lost the daemon, keeps trying, and follows the job again once it answers", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "until-cancelled" });
    const child = spawn(process.execPath, [BIN, "jobs", "watch", String(job.id)], {
      env: { ...process.env, NO_COLOR: "1", TEAMWORK_HOME: d.home, TEAMWORK_TIMEOUT: "1s" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    try {
      await waitFor(() => /waiting for cancel/.test(stdout), { what: "the job running under watch" });
      freeze();
      // Silence is noticed after the keep-alive interval (15 s) plus the timeout.
      await waitFor(() => /lost the daemon while watching job \d+: the daemon \(pid \d+\) is not answering/.test(stderr), { timeoutMs: 25_000, what: "the watcher saying it lost the daemon" });
      expect(child.exitCode).toBeNull(); // still trying
      thaw();
      await waitFor(() => /the daemon answers again/.test(stderr), { timeoutMs: 10_000, what: "the watcher reconnecting" });
      await d.client.call("jobsCancel", { id: job.id });
      expect(await exited).toBe(1); // cancelled
      expect(stdout).toMatch(/cancelled/);
    } finally {
      child.kill("SIGKILL");
    }
  }, 45_000);
});

// Errors that mislead (issue 18 item 9): a daemon that died without stopping cleanly (a
// crash, out of memory, kill -9) is not "not running": the CLI says it stopped unexpectedly
// and where its log is.
describe("a daemon that stopped unexpectedly", () => {
  let c: TestDaemon;
  beforeEach(async () => {
    c = await startDaemon();
  });
  afterEach(async () => {
    await runCli(["daemon", "stop"], { home: c.home }); // one the CLI started in its place
    await c.cleanup();
  });

  const stopped = () => new RegExp(`the daemon \\(pid ${c.pid}\\) stopped unexpectedly`);

  it("is said so, with its log, by a command (auto-start off) and by daemon status; auto-start says it starts a new one", async () => {
    await c.kill9();
    const r = await runCli(["tasks", "list", "--no-autostart"], { home: c.home });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(stopped());
    expect(r.stderr).toContain(`log at ${c.paths.logFile}`);

    const st = await runCli(["daemon", "status"], { home: c.home });
    expect(st.exitCode).toBe(3);
    expect(st.stdout).toMatch(stopped());
    const js = await runJson<{ running: boolean; stoppedUnexpectedly: boolean; pid: number }>(["daemon", "status"], { home: c.home });
    expect(js.json).toMatchObject({ running: false, stoppedUnexpectedly: true, pid: c.pid });

    const again = await runCli(["tasks", "list"], { home: c.home });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`the daemon \\(pid ${c.pid}\\) had stopped unexpectedly \\(log at .*\\); starting a new one`));
  });

  it("a write in flight when the daemon dies says so, and that the change may or may not have been made", async () => {
    const client = connect({ paths: c.paths, autostart: false, timeoutMs: 10_000 });
    try {
      await client.call("health", {}); // connected and upgraded
      process.kill(c.pid, "SIGSTOP");
      const call = client.call("tasksAdd", { title: "in flight", board: "default" }).then(
        () => null,
        (e: unknown) => e,
      );
      await c.kill9();
      const err = (await call) as TeamworkError;
      expect(err).toBeInstanceOf(TeamworkError);
      expect(err.message).toMatch(stopped());
      expect(err.message).toMatch(/during the call/);
      expect(err.hint).toMatch(/may or may not have been made/);
    } finally {
      client.close();
    }
  });

  it("a daemon stopped cleanly is just not running", async () => {
    await c.stop();
    const r = await runCli(["tasks", "list", "--no-autostart"], { home: c.home });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/daemon not running/);
    expect(r.stderr).not.toMatch(/unexpectedly/);
  });
});
