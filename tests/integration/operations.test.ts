// Day-to-day operation: jobs why, pause/resume (across a restart), concurrency at run
// time, poison pills quarantined, late results fenced.

import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { Job, JobWhy } from "../../src/protocol/types.js";

let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
});

const get = async (id: number) => (await d!.client.call("jobsGet", { id })).job;
const until = (id: number, pred: (j: Job) => boolean, timeoutMs = 10_000) =>
  waitFor(async () => {
    const j = await get(id);
    return pred(j) ? j : null;
  }, { timeoutMs, what: `job ${id}` });
const enqueue = async (type: string, extra: Record<string, unknown> = {}) => (await d!.client.call("jobsEnqueue", { type, ...extra })).job;
const why = (id: number) => d!.client.call("jobsWhy", { id });

describe("jobs why", () => {
  it("names every reason a job is or is not running", async () => {
    d = await startDaemon({ config: { concurrency: 1, backoff: { base: "1h", cap: "1h" }, quarantineAfter: 1 } });
    const blocker = await enqueue("until-cancelled");
    await until(blocker.id, (j) => j.status === "running" && j.progress === 10);
    expect(await why(blocker.id)).toMatchObject({ code: "running", message: expect.stringMatching(/^running in slot 1 \(attempt 1\/3\), 10% done$/) });

    const first = await enqueue("noop");
    const second = await enqueue("noop");
    expect(await why(second.id)).toMatchObject({ code: "waiting_for_slot", ahead: 1, message: "waiting for a slot: 1 ahead of it, 1 of 1 slots busy" });
    const urgent = await enqueue("noop", { priority: 10 });
    expect((await why(first.id)).ahead).toBe(1); // the urgent one goes first
    expect((await why(urgent.id)).ahead).toBe(0);

    const later = await enqueue("noop", { delayMs: 3_600_000 });
    expect(await why(later.id)).toMatchObject({ code: "scheduled", message: expect.stringMatching(/^scheduled for \d{4}-/) });

    await d.client.call("queuePause", { type: "noop" });
    expect(await why(first.id)).toMatchObject({ code: "type_paused" });
    await d.client.call("queuePause", {});
    expect(await why(first.id)).toMatchObject({ code: "queue_paused" });
    await d.client.call("queueResume", {});

    await d.client.call("jobsCancel", { id: blocker.id });
    expect(await why(blocker.id)).toMatchObject({ code: "cancelled" });
    await until(second.id, (j) => j.status === "complete");
    expect(await why(second.id)).toMatchObject({ code: "complete" });

    const flaky = await enqueue("throw");
    await until(flaky.id, (j) => j.status === "pending" && j.attempts === 1);
    expect(await why(flaky.id)).toMatchObject({ code: "backing_off", message: expect.stringMatching(/^backing off until .* after attempt 1 failed: boom on attempt 1$/) });

    const perm = await enqueue("permanent");
    await until(perm.id, (j) => j.status === "failed");
    expect(await why(perm.id)).toMatchObject({ code: "failed", message: "finished: failed after 1 attempt: this will never work" });

    const pill = await enqueue("exit", { maxAttempts: 5 });
    await until(pill.id, (j) => j.status === "failed");
    expect(await why(pill.id)).toMatchObject({ code: "quarantined" });

    const cli = await runJson<JobWhy>(["jobs", "why", String(later.id)], { home: d.home });
    expect(cli.json.code).toBe("scheduled");
    const text = await runCli(["jobs", "why", String(later.id)], { home: d.home });
    expect(text.stdout).toMatch(new RegExp(`^job ${later.id}: scheduled for `));
    expect((await runCli(["jobs", "why", "99999"], { home: d.home })).exitCode).toBe(4);
  });
});

describe("pause and resume", () => {
  it("holds new work (all types or one), survives a restart, and resumes", async () => {
    d = await startDaemon();
    expect((await runCli(["queue", "pause", "noop"], { home: d.home })).stdout).toMatch(/paused for noop/);
    const held = await enqueue("noop");
    const other = await enqueue("validated", { payload: { n: 2 } });
    await until(other.id, (j) => j.status === "complete");
    expect((await get(held.id)).status).toBe("pending");

    await runCli(["queue", "pause"], { home: d.home });
    await d.stop();
    await d.restart();
    const status = await runJson<{ paused: { all: boolean; types: string[] } }>(["daemon", "status"], { home: d.home });
    expect(status.json.paused).toEqual({ all: true, types: ["noop"] });
    const also = await enqueue("validated", { payload: { n: 3 } });
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(also.id)).status).toBe("pending");

    await runCli(["queue", "resume"], { home: d.home });
    await until(held.id, (j) => j.status === "complete");
    await until(also.id, (j) => j.status === "complete");
    expect((await runJson<{ paused: unknown }>(["queue", "status"], { home: d.home })).json.paused).toEqual({ all: false, types: [] });
    expect((await runCli(["queue", "pause", "nope"], { home: d.home })).exitCode).toBe(2);
  });
});

describe("concurrency at run time", () => {
  it("grows and shrinks the pool without touching running jobs", async () => {
    d = await startDaemon({ config: { concurrency: 1 } });
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await enqueue("until-cancelled"));
    await until(jobs[0]!.id, (j) => j.status === "running");
    const running = async () => (await d!.client.call("jobsList", { status: "running" })).jobs;
    expect(await running()).toHaveLength(1);

    const grown = await runJson<{ concurrency: number }>(["queue", "concurrency", "3"], { home: d.home });
    expect(grown.json.concurrency).toBe(3);
    await waitFor(async () => (await running()).length === 3);
    expect(new Set((await running()).map((j) => j.slot))).toEqual(new Set([1, 2, 3]));

    await d.client.call("queueConcurrency", { concurrency: 1 });
    expect(await running()).toHaveLength(3); // running jobs are not touched
    for (const j of await running()) await d.client.call("jobsCancel", { id: j.id });
    await waitFor(async () => (await running()).length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await running()).toHaveLength(1);
    expect((await running())[0]!.slot).toBe(1);
    expect((await runCli(["queue", "concurrency", "0"], { home: d.home })).exitCode).toBe(2);
    for (const j of await running()) await d.client.call("jobsCancel", { id: j.id });
  });
});

describe("poison pills and late results", () => {
  it("quarantines a job that keeps killing its worker while other jobs keep flowing; retry runs it again", async () => {
    d = await startDaemon({ config: { quarantineAfter: 2, backoff: { base: "10ms", cap: "20ms" } } });
    const pill = await enqueue("exit", { maxAttempts: 10 });
    const others = await Promise.all(Array.from({ length: 10 }, () => enqueue("noop")));
    const done = await until(pill.id, (j) => j.status === "failed");
    expect(done.attempts).toBe(2);
    expect(done.error).toMatch(/^quarantined: killed its worker 2 times \(last: worker exited with code 3\)/);
    for (const o of others) expect((await until(o.id, (j) => j.status === "complete")).status).toBe("complete");
    await d.client.call("jobsRetry", { id: pill.id });
    const again = await until(pill.id, (j) => j.status === "failed" && j.attempts === 4);
    expect(again.error).toMatch(/^quarantined: killed its worker 2 times/);
  });

  it("ignores the result of an attempt that already timed out", async () => {
    d = await startDaemon({ config: { jobTimeout: "300ms", cancelGrace: "3s" } });
    const job = await enqueue("late", { payload: { ms: 800 }, maxAttempts: 1 });
    const failed = await until(job.id, (j) => j.status === "failed");
    expect(failed.error).toBe("timed out after 300ms");
    await new Promise((r) => setTimeout(r, 800)); // the late result arrives and must not win
    const after = await get(job.id);
    expect(after.status).toBe("failed");
    expect(after.result).toBeNull();
  });
});

describe("daemon install", () => {
  it("prints and writes a systemd user unit that runs this daemon on this home, and removes it", async () => {
    const { mkdtempSync, readFileSync, existsSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const home = mkdtempSync(join(tmpdir(), "tw-unit-"));
    const xdg = mkdtempSync(join(tmpdir(), "tw-xdg-"));
    try {
      const printed = await runCli(["daemon", "install", "--print"], { home });
      expect(printed.exitCode).toBe(0);
      expect(printed.stdout).toMatch(/^\[Service\]$/m);
      expect(printed.stdout).toMatch(new RegExp(`^ExecStart=${process.execPath.replace(/[/.]/g, "\\$&")} --max-semi-space-size=1 --optimize-for-size \\S+/dist/daemon/main\\.js --home ${home.replace(/[/.]/g, "\\$&")}$`, "m"));
      expect(printed.stdout).toMatch(/^Restart=on-failure$/m);
      expect(printed.stdout).toMatch(/^RestartPreventExitStatus=2 5 10$/m);
      expect(printed.stdout).toMatch(/^StandardError=journal$/m);
      expect(printed.stdout).toMatch(/^WantedBy=default.target$/m);
      const installed = await runJson<{ name: string; path: string }>(["daemon", "install"], { home, env: { XDG_CONFIG_HOME: xdg } });
      expect(installed.json.path).toBe(join(xdg, "systemd", "user", installed.json.name));
      expect(installed.json.name).toMatch(/^teamwork-[0-9a-f]{8}\.service$/);
      expect(readFileSync(installed.json.path, "utf8")).toBe(printed.stdout);
      const removed = await runCli(["daemon", "uninstall"], { home, env: { XDG_CONFIG_HOME: xdg } });
      expect(removed.stdout).toMatch(/^removed /);
      expect(existsSync(installed.json.path)).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(xdg, { recursive: true, force: true });
    }
  });
});

describe("versions", () => {
  it("refuses a database written by a newer teamwork, with its own exit code, and leaves it alone", async () => {
    const { mkdtempSync, rmSync, statSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const Database = (await import("better-sqlite3")).default;
    const home = mkdtempSync(join(tmpdir(), "tw-newer-"));
    try {
      const db = new Database(join(home, "teamwork.db"));
      db.exec("CREATE TABLE future (x INTEGER)");
      db.pragma("user_version = 999");
      db.close();
      const before = statSync(join(home, "teamwork.db")).mtimeMs;
      const r = await runCli(["tasks", "list"], { home });
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toMatch(/written by a newer teamwork \(schema 999/);
      const check = new Database(join(home, "teamwork.db"), { readonly: true });
      expect(check.pragma("user_version", { simple: true })).toBe(999);
      expect(check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'tasks'").get()).toEqual({ n: 0 });
      check.close();
      expect(statSync(join(home, "teamwork.db")).mtimeMs).toBe(before);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("warns once on stderr when the daemon runs another version, never under --json", async () => {
    // A stand-in daemon of another version on the socket: the one part that cannot be a
    // real older teamwork here.
    const { mkdtempSync, mkdirSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const http = await import("node:http");
    const home = mkdtempSync(join(tmpdir(), "tw-ver-"));
    mkdirSync(join(home, "run"), { mode: 0o700 });
    const server = http.createServer((req, res) => {
      const body = req.url === "/health" ? { ok: true, version: "9.9.9", pid: process.pid } : { tasks: [] };
      res.writeHead(200, { "content-type": "application/json", "x-teamwork-version": "9.9.9" });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(join(home, "run", "daemon.sock"), () => r()));
    try {
      const plain = await runCli(["tasks", "list"], { home });
      expect(plain.exitCode).toBe(0);
      expect(plain.stderr.match(/the daemon runs teamwork 9\.9\.9/g)).toHaveLength(1);
      expect(plain.stderr).toMatch(/teamwork daemon stop && teamwork daemon start/);
      const json = await runCli(["tasks", "list", "--json"], { home });
      expect(json.stderr).toBe("");
      expect(JSON.parse(json.stdout)).toEqual([]);
    } finally {
      server.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("stats and metrics", () => {
  it("counts a known workload, per type, and exposes it to Prometheus", async () => {
    d = await startDaemon({ config: { backoff: { base: "10ms", cap: "20ms" } } });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await enqueue("noop")).id);
    for (let i = 0; i < 2; i++) ids.push((await enqueue("throw", { maxAttempts: 2 })).id);
    const waiting = await enqueue("noop", { delayMs: 3_600_000 });
    for (const id of ids) await until(id, (j) => j.status === "complete" || j.status === "failed");
    await d.client.call("jobsCancel", { id: waiting.id });

    const s = await runJson<import("../../src/protocol/types.js").Stats>(["stats", "--since", "1h"], { home: d.home });
    const noop = s.json.types.find((t) => t.type === "noop")!;
    const thrown = s.json.types.find((t) => t.type === "throw")!;
    expect(noop).toMatchObject({ finished: 6, complete: 5, failed: 0, cancelled: 1, retried: 0 });
    expect(thrown).toMatchObject({ finished: 2, complete: 0, failed: 2, retried: 2 });
    expect(noop.runMs.mean).toBeGreaterThanOrEqual(0);
    expect(noop.startLatencyMs.p50).not.toBeNull();
    expect(s.json.queue).toMatchObject({ pending: 0, running: 0, concurrency: 3 });

    const { request } = await import("node:http");
    const text = await new Promise<{ type: string; body: string }>((resolve, reject) => {
      request({ socketPath: d!.paths.socket, path: "/metrics" }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ type: String(res.headers["content-type"]), body }));
      })
        .on("error", reject)
        .end();
    });
    expect(text.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text.body).toContain('teamwork_jobs{status="complete"} 5');
    expect(text.body).toContain('teamwork_jobs{status="failed"} 2');
    expect(text.body).toContain('teamwork_jobs_finished_total{type="throw",outcome="failed"} 2');
    expect(text.body).toContain('teamwork_job_retries_total{type="throw"} 2');
    expect(text.body).toContain('teamwork_slots{state="total"} 3');
    expect(text.body).toMatch(/^# TYPE teamwork_job_start_latency_seconds histogram$/m);
    expect(text.body).toMatch(/^teamwork_job_start_latency_seconds_count\{type="noop"\} 5$/m);
    const human = await runCli(["stats"], { home: d.home });
    expect(human.stdout).toMatch(/TYPE\s+FINISHED\s+FAILED/);
    expect((await runCli(["stats", "--since", "later"], { home: d.home })).exitCode).toBe(2);
  });
});

describe("job logs", () => {
  it("keeps a job's lines (bounded, newest win), including what it printed, and follows them live", async () => {
    d = await startDaemon();
    const big = await enqueue("chatty", { payload: { lines: 250 } });
    await until(big.id, (j) => j.status === "complete");
    const { logs } = await d.client.call("jobsLogs", { id: big.id });
    expect(logs).toHaveLength(200);
    expect(logs.at(-1)!.message).toBe("line 250");
    expect(logs[0]!.message).toBe("line 51");

    const small = await enqueue("chatty", { payload: { lines: 2 } });
    await until(small.id, (j) => j.status === "complete");
    const text = await runCli(["jobs", "logs", String(small.id)], { home: d.home });
    expect(text.stdout.trim().split("\n").map((l) => l.replace(/^\S+ \[\d+\] /, ""))).toEqual(["printed on stdout", "line 1", "line 2"]);

    const slow = await enqueue("chatty", { payload: { lines: 5, gapMs: 150 } });
    await until(slow.id, (j) => j.status === "running");
    const followed = await runCli(["jobs", "logs", String(slow.id), "--follow"], { home: d.home });
    expect(followed.exitCode).toBe(0);
    const lines = followed.stdout.trim().split("\n").map((l) => l.replace(/^\S+ \[\d+\] /, ""));
    expect(lines).toContain("line 5");
    expect(new Set(lines).size).toBe(lines.length); // no line twice

    const watched = await runCli(["enqueue", "chatty", "--data", '{"lines":2,"gapMs":100}', "--watch"], { home: d.home });
    expect(watched.stdout).toMatch(/ {2}log: line 2/);
    await d.client.call("jobsPrune", { olderThan: "0s" });
    await expect(d.client.call("jobsLogs", { id: big.id })).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("the run folder", () => {
  it("is never re-moded when it already exists: one others can open is refused", async () => {
    const { mkdtempSync, mkdirSync, rmSync, statSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const home = mkdtempSync(join(tmpdir(), "tw-run-"));
    try {
      mkdirSync(join(home, "run"), { mode: 0o755 });
      const r = await runCli(["tasks", "list"], { home });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toMatch(/can be opened by other users \(mode 755\)/);
      expect(statSync(join(home, "run")).mode & 0o777).toBe(0o755);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
