// Disk and database faults, each against a real daemon:
// - the database locked by another process (BEGIN EXCLUSIVE from this test): writes get a
//   clear 503, nothing refused is stored later, reads and a running job carry on, and all is
//   well once the lock goes; a daemon started under the lock exits with the reason;
// - a corrupted database (garbage in the middle of a real one, cut in half, a zeroed header,
//   or garbage for a file): the daemon refuses to start with a clear message and a non-zero
//   exit, leaves the file's bytes alone, and the CLI does not end up in a start loop;
// - a full disk (a 2 MiB tmpfs holding the home, the daemon started by the CLI as users do,
//   so its log is on the full disk too): writes are refused with a clear error, nothing
//   acknowledged is lost, reads keep being answered, and writes work again after space frees.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { FIXTURE_JOBS, startDaemon, tempHome, writeConfig, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { allJobs } from "../helpers/jobs.js";
import { Client } from "../../src/client/client.js";
import { resolvePaths } from "../../src/config/paths.js";
import type { JobSummary } from "../../src/protocol/types.js";
import { cleanupAfterEach, finished, alive, daemonsFor, httpRequest, killDaemonsFor, prng, RELIABILITY_JOBS, seedFrom, spawnDaemon, within } from "./support.js";

const SEED = seedFrom("FAULTS_SEED", 0xfa017);

let d: TestDaemon | undefined;
const cleanups = cleanupAfterEach(
  () => d,
  () => (d = undefined),
);

/**
 * Another process's view: an exclusive transaction on the database, held until release() (or
 * the test's end). Taking it waits for a write the daemon has under way (the engine writes a
 * job's start, its progress, its end, at moments the test does not choose): refused at once, as
 * with busy_timeout = 0, it failed this test about 1 run in 6 with SQLITE_BUSY ("database is
 * locked") from this helper itself, when the lock was asked for while a tick was committing.
 */
function holdLock(database: string): { release(): void } {
  const other = new Database(database);
  other.pragma("busy_timeout = 10000");
  other.exec("BEGIN EXCLUSIVE");
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    other.exec("ROLLBACK");
    other.close();
  };
  cleanups.push(release);
  return { release };
}

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const errorOf = (p: Promise<unknown>) => p.then(
  () => null,
  (e: Error & { code?: string }) => e,
);

// ---------------------------------------------------------------------------------------

describe("the database locked by another process", () => {
  it("refuses writes with a clear 503, stores nothing it refused, keeps reads and the running job, and recovers", async () => {
    d = await startDaemon({ config: { concurrency: 1, shutdownGrace: "500ms", jobModules: [FIXTURE_JOBS, RELIABILITY_JOBS] } });
    const daemon = d;
    // Patient enough to see the daemon's own answer, however slow, rather than our timeout.
    const client = new Client({ socket: daemon.paths.socket, timeoutMs: 30_000 });
    cleanups.push(() => client.close());
    const acked = [];
    for (let i = 0; i < 3; i++) acked.push((await client.call("tasksAdd", { title: `before ${i}` })).task.id);
    // A job that runs (silently) through the whole lock.
    const { job: long } = await client.call("jobsEnqueue", { type: "journal", payload: { file: join(daemon.home, "journal.log"), ms: 120_000 } });
    await waitFor(() => existsSync(join(daemon.home, "journal.log")), { what: "the long job to start" });

    const lock = holdLock(daemon.paths.database);
    // All at once while the lock is held: an enqueue, a task write through the CLI, a read,
    // and a health probe, each timed (the raw requests are bounded at 30 s).
    const t0 = Date.now();
    const timed = async <T>(p: Promise<T>) => {
      const s = Date.now();
      const v = await p;
      return { v, ms: Date.now() - s };
    };
    const [enqueue, cli, health, read] = await Promise.all([
      timed(errorOf(client.call("jobsEnqueue", { type: "noop", payload: { refused: true } }))),
      timed(runCli(["tasks", "add", "refused while locked"], { home: daemon.home, timeoutMs: 40_000 })),
      timed(httpRequest(daemon.paths.socket, { method: "GET", path: "/health" }, 30_000)),
      timed(httpRequest(daemon.paths.socket, { method: "GET", path: "/tasks" }, 30_000)),
    ]);
    lock.release();
    const lockedFor = Date.now() - t0;
    console.log(`locked database: lock held ${lockedFor} ms; enqueue refused after ${enqueue.ms} ms, CLI task refused after ${cli.ms} ms; health answered after ${health.ms} ms, tasks list after ${read.ms} ms`);
    expect(enqueue.v?.code).toBe("unavailable");
    expect(enqueue.v?.message).toMatch(/locked by another process|database is locked/);
    expect(cli.v.exitCode).toBe(1);
    expect(cli.v.stderr).toMatch(/locked by another process.*nothing was changed/);
    // Reads are answered (WAL: a writer's lock does not block readers) and show what was acked.
    expect(health.v.status).toBe(200);
    expect(read.v.status).toBe(200);
    expect((JSON.parse(read.v.body) as { tasks: { id: number }[] }).tasks.map((t) => t.id)).toEqual(acked);

    // The job that ran through it all is still its first attempt, and can be cancelled.
    const still = (await client.call("jobsGet", { id: long.id })).job;
    expect([still.status, still.attempts]).toEqual(["running", 1]);
    expect((await client.call("jobsCancel", { id: long.id })).job.status).toBe("cancelled");

    // Writes work again; what was refused was never stored (no late "ghost" write).
    await client.call("tasksAdd", { title: "after the lock" });
    const { job } = await client.call("jobsEnqueue", { type: "noop", payload: { after: true } });
    expect((await finished(client, job.id)).status).toBe("complete");
    const titles = (await client.call("tasksList", {})).tasks.map((t) => t.title);
    expect(titles).toEqual(["before 0", "before 1", "before 2", "after the lock"]);
    const jobs = await allJobs(client);
    expect(jobs.filter((j) => (j.payload as { refused?: boolean }).refused)).toEqual([]);
    expect(daemon.log()).not.toMatch(/daemon\.uncaught_exception|request\.failed|request\.crashed/);
  }, 60_000);

  it("keeps answering health checks fast for as long as another process holds the lock", async () => {
    // A write that meets the lock waits (busy_timeout) on the daemon's only thread, and the
    // engine retries its failed ticks: neither may leave the daemon deaf while the lock lasts.
    d = await startDaemon();
    const daemon = d;
    const lock = holdLock(daemon.paths.database);
    // For 2 s: a client that keeps trying to add a task, and a health probe. Each refused write
    // holds the daemon's thread for the busy timeout (250 ms), so an answer may wait behind one
    // or two of them, not more. (Enqueues refused under the lock are the test above's.)
    const until = Date.now() + 2_000;
    const refusals: string[] = [];
    const writer = async () => {
      while (Date.now() < until) {
        const e = await errorOf(daemon.client.call("tasksAdd", { title: "blocked" }));
        refusals.push(e ? `${e.code}: ${e.message}` : "accepted");
      }
    };
    const latencies: number[] = [];
    const prober = async () => {
      while (Date.now() < until) {
        const s = Date.now();
        const r = await httpRequest(daemon.paths.socket, { method: "GET", path: "/health" }, 20_000);
        latencies.push(r.status === 200 ? Date.now() - s : Infinity);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await Promise.all([writer(), prober()]);
    lock.release();
    console.log(`while locked for 2 s: ${refusals.length} writes refused, ${latencies.length} health answers, slowest ${Math.max(...latencies)} ms`);
    expect(refusals.filter((r) => !/^unavailable: .*locked/.test(r))).toEqual([]);
    expect(refusals.length).toBeGreaterThanOrEqual(4);
    expect(latencies.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...latencies), "slowest health answer (ms)").toBeLessThan(1_000);
    // Nothing refused was stored, and writing works again.
    expect((await daemon.client.call("tasksList", {})).tasks).toEqual([]);
    expect((await daemon.client.call("tasksAdd", { title: "after" })).task.title).toBe("after");
  }, 30_000);

  it("a daemon started while the lock is held exits with the reason, and starts once it is released", async () => {
    const home = tempHome();
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });
    expect((await runCli(["tasks", "add", "seed"], { home })).exitCode).toBe(0);
    expect((await runCli(["daemon", "stop"], { home })).exitCode).toBe(0);
    const paths = resolvePaths({ home });
    const lock = holdLock(paths.database);
    try {
      const early = spawnDaemon(home);
      cleanups.push(() => killDaemonsFor(home));
      const exit = await within(early.exited, 20_000, "a daemon started on a locked database");
      expect(exit.code).not.toBe(0);
      expect(readFileSync(join(home, "daemon.log"), "utf8")).toMatch(/database is locked/);
    } finally {
      lock.release();
    }
    const r = await runJson<{ title: string }[]>(["tasks", "list"], { home });
    expect(r.exitCode).toBe(0);
    expect(JSON.stringify(r.json)).toContain("seed");
    expect((await runCli(["daemon", "stop"], { home })).exitCode).toBe(0);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------

describe(`a corrupted database (seed ${SEED})`, () => {
  /** A real database with some history, closed cleanly (WAL folded back into the file). */
  async function realDatabase(): Promise<{ home: string; db: string }> {
    const home = tempHome();
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    const t = await startDaemon({ home });
    try {
      await t.client.call("boardsAdd", { name: "web" });
      for (let i = 0; i < 40; i++) {
        await t.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 10 }, (_, k) => ({ type: "noop", payload: { note: `job ${i}.${k} `.repeat(20) } })) });
        await t.client.call("tasksAdd", { title: `task ${i} ${"x".repeat(300)}`, board: i % 2 ? "web" : "default", description: "d".repeat(2000) });
      }
      await waitFor(async () => (await t.client.call("daemonStatus", {})).counts.jobs.complete === 400, { what: "the jobs to complete" });
    } finally {
      expect(await t.stop()).toBe(0);
      t.client.close();
    }
    return { home, db: resolvePaths({ home }).database };
  }

  /** Overwrites, with garbage, the middle leaf page of a table (found with dbstat). */
  const garbageOverTable = (table: string) => (db: string, rand: () => number) => {
    const ro = new Database(db, { readonly: true, fileMustExist: true });
    const pageSize = ro.pragma("page_size", { simple: true }) as number;
    const pages = ro.prepare<[string], { pageno: number }>("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").all(table);
    ro.close();
    expect(pages.length, `leaf pages of ${table}`).toBeGreaterThan(2);
    const page = pages[Math.floor(pages.length / 2)]!.pageno;
    const fd = openSync(db, "r+");
    writeSync(fd, Buffer.from(Array.from({ length: pageSize }, () => Math.floor(rand() * 256))), 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);
  };
  const corruptions: [string, (db: string, rand: () => number) => void][] = [
    ["garbage over a page of the jobs table", garbageOverTable("jobs")],
    ["garbage over a page of the tasks table", garbageOverTable("tasks")],
    ["cut in half", (db) => truncateSync(db, Math.floor(statSync(db).size / 2 / 4096) * 4096)],
    [
      "a zeroed header",
      (db) => {
        const fd = openSync(db, "r+");
        writeSync(fd, Buffer.alloc(100), 0, 100, 0);
        closeSync(fd);
      },
    ],
    ["garbage for a file", (db, rand) => writeFileSync(db, Buffer.from(Array.from({ length: 65_536 }, () => Math.floor(rand() * 256))))],
  ];

  // A broken header or file is refused at start. Garbage inside one table's page is found
  // only when that table is read (a full integrity check at every start would cost seconds
  // at a million jobs): the daemon then answers every request that touches it with a clear
  // 503 (SQLITE_CORRUPT), and never changes the file.
  it("is refused at start, or on first use, with a clear message, byte for byte untouched, with no start loop", async () => {
    const rand = prng(SEED);
    const base = await realDatabase();
    const problems: string[] = [];
    for (const [name, corrupt] of corruptions) {
      const home = tempHome();
      cleanups.push(() => rmSync(home, { recursive: true, force: true }));
      cleanups.push(() => killDaemonsFor(home));
      writeConfig(home, { jobModules: [FIXTURE_JOBS] });
      const db = resolvePaths({ home }).database;
      copyFileSync(base.db, db);
      corrupt(db, rand);
      const before = sha(db);

      // Started directly: it must exit by itself, non-zero, saying what is wrong.
      const direct = spawnDaemon(home);
      const paths = resolvePaths({ home });
      const client = new Client({ socket: paths.socket, timeoutMs: 2_000 });
      const outcome = await within(
        Promise.race([
          direct.exited.then((e) => ({ exited: e })),
          waitFor(() => client.call("health", {}).then((h) => h.ok), { timeoutMs: 15_000, what: "health" }).then(() => ({ exited: null })),
        ]),
        20_000,
        `a daemon on a database with ${name}`,
      );
      client.close();
      const log = readFileSync(join(home, "daemon.log"), "utf8");
      if (outcome.exited === null) {
        // It came up: what a user then sees must say the database is damaged.
        const list = await runCli(["tasks", "list"], { home, env: { TEAMWORK_NO_AUTOSTART: "1" } });
        if (list.exitCode === 0 || !/malformed|not a database|corrupt/i.test(list.stderr)) {
          problems.push(`${name}: the daemon serves the corrupt database without saying so (tasks list: exit ${list.exitCode}, ${list.stderr.trim().split("\n")[0]})`);
        }
        direct.child.kill("SIGKILL");
        await direct.exited;
      } else {
        if (outcome.exited.code === 0 || outcome.exited.code === null) problems.push(`${name}: exit ${outcome.exited.code} (${outcome.exited.signal})`);
        if (!/malformed|not a database|corrupt/i.test(log)) problems.push(`${name}: the log does not say why: ${log.slice(-300)}`);
        if (/uncaught_exception/.test(log)) problems.push(`${name}: crashed rather than refused`);
      }
      if (sha(db) !== before) problems.push(`${name}: the database file was changed`);

      // Through the CLI, twice: each command fails once, clearly, and leaves nothing running.
      for (let i = 0; i < 2; i++) {
        const r = await runCli(["tasks", "list"], { home, timeoutMs: 30_000 });
        if (r.exitCode === 0) problems.push(`${name}: \`tasks list\` succeeded on a corrupt database`);
        else if (!/malformed|not a database|corrupt/i.test(r.stderr)) problems.push(`${name}: \`tasks list\` exit ${r.exitCode} without a clear reason: ${r.stderr.slice(0, 300)}`);
      }
      const left = daemonsFor(home);
      if (left.length > 0 && outcome.exited !== null) problems.push(`${name}: daemons left running: ${left.join(", ")}`);
      await killDaemonsFor(home);
      if (sha(db) !== before) problems.push(`${name}: the database file was changed by the CLI's attempts`);
    }
    expect(problems, `seed ${SEED}`).toEqual([]);
  }, 90_000);
});

// ---------------------------------------------------------------------------------------

describe("a full disk", () => {
  it("refuses writes with a clear error, loses nothing acknowledged, keeps answering reads, and recovers", async (ctx) => {
    const mnt = mkdtempSync(join(tmpdir(), "tw-full-"));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mnt], { stdio: "pipe" });
    } catch (err) {
      rmSync(mnt, { recursive: true, force: true });
      console.warn(`skipped: cannot mount a 2 MiB tmpfs here (${(err as Error).message.split("\n")[0]})`);
      ctx.skip();
      return;
    }
    const home = join(mnt, "home");
    cleanups.push(() => {
      try {
        execFileSync("umount", [mnt], { stdio: "pipe" });
      } catch {
        execFileSync("umount", ["-l", mnt], { stdio: "pipe" });
      }
      rmSync(mnt, { recursive: true, force: true });
    });
    cleanups.push(() => killDaemonsFor(home));
    mkdirSync(home);
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });

    // Started the way users start it: detached, logging to <home>/daemon.log on this disk.
    const started = await runJson<{ pid: number }>(["daemon", "start"], { home });
    expect(started.exitCode).toBe(0);
    const pid = started.json.pid;
    const client = new Client({ socket: resolvePaths({ home }).socket, timeoutMs: 10_000 });
    cleanups.push(() => client.close());

    const ackedTasks: number[] = [];
    const ackedJobs: number[] = [];
    for (let i = 0; i < 20; i++) ackedTasks.push((await client.call("tasksAdd", { title: `task ${i}` })).task.id);
    for (const j of (await client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 30 }, (_, i) => ({ type: "noop", payload: { i } })) })).jobs) ackedJobs.push(j.job.id);
    await waitFor(async () => (await client.call("daemonStatus", {})).counts.jobs.complete === 30, { what: "the first jobs" });

    // Fill the disk to the last byte.
    const filler = join(mnt, "filler");
    const fd = openSync(filler, "w");
    for (const chunk of [65_536, 4_096, 1]) {
      const buf = Buffer.alloc(chunk, 0x61);
      for (let i = 0; i < 10_000; i++) {
        try {
          writeSync(fd, buf);
        } catch {
          break;
        }
      }
    }
    closeSync(fd);

    // Writes: refused with the reason, sooner or later (SQLite may have room left in a page).
    // Then keep trying for a while, as clients do: 60 refused writes, each of them a line the
    // daemon wants to log on the same full disk.
    const refusals: string[] = [];
    for (let i = 0; i < 300 && refusals.length < 60; i++) {
      const r = await errorOf(client.call("tasksAdd", { title: `while full ${i} ${"y".repeat(400)}` }).then((x) => ackedTasks.push(x.task.id)));
      if (r) refusals.push(`${r.code}: ${r.message}`);
      if (r && (!alive(pid) || r.code !== "unavailable" || /closed the connection/.test(r.message))) break;
    }
    const unclear = refusals.filter((r) => !/^unavailable: .*(disk is full|database or disk is full)/.test(r));
    expect(alive(pid) && unclear.length === 0, `after ${refusals.length} refused writes: daemon ${alive(pid) ? "still has a pid" : "gone"}; refusals without the reason: ${unclear.slice(0, 3).join(" | ")}`).toBe(true);
    expect(refusals.length, "task writes refused").toBe(60);
    const enqueue = await errorOf(client.call("jobsEnqueue", { type: "noop", payload: { full: true } }).then((x) => ackedJobs.push(x.job.id)));
    if (enqueue) expect(`${enqueue.code}: ${enqueue.message}`).toMatch(/^unavailable: .*(disk is full|could not store)/);
    const cli = await runCli(["tasks", "add", "from the CLI while full"], { home, env: { TEAMWORK_NO_AUTOSTART: "1" } });
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr).toMatch(/disk is full|database or disk is full/);

    // Reads are still answered, by the same daemon, and show everything acknowledged.
    expect(alive(pid), "the daemon died on a full disk").toBe(true);
    expect((await client.call("health", {})).pid).toBe(pid);
    const listed = new Set((await client.call("tasksList", {})).tasks.map((t) => t.id));
    expect(ackedTasks.filter((id) => !listed.has(id))).toEqual([]);
    const jobs = new Map((await client.call("jobsList", { limit: 1_000 })).jobs.map((j): [number, JobSummary] => [j.id, j]));
    expect(ackedJobs.filter((id) => !jobs.has(id))).toEqual([]);
    const status = await runJson<{ running: boolean }>(["daemon", "status"], { home, env: { TEAMWORK_NO_AUTOSTART: "1" } });
    expect(status.json.running).toBe(true);

    // Space again: writes work, nothing acknowledged went missing, the same daemon serves.
    rmSync(filler);
    const { task } = await waitFor(() => client.call("tasksAdd", { title: "after" }), { timeoutMs: 10_000, what: "a write after freeing space" });
    ackedTasks.push(task.id);
    const { job } = await client.call("jobsEnqueue", { type: "noop", payload: { after: true } });
    ackedJobs.push(job.id);
    expect((await finished(client, job.id)).status).toBe("complete");
    const finalTasks = new Set((await client.call("tasksList", {})).tasks.map((t) => t.id));
    expect(ackedTasks.filter((id) => !finalTasks.has(id))).toEqual([]);
    const finalJobs = (await client.call("jobsList", { limit: 1_000 })).jobs;
    expect(ackedJobs.filter((id) => !finalJobs.some((j) => j.id === id))).toEqual([]);
    expect(finalJobs.filter((j) => j.status !== "complete").map((j) => `${j.id} ${j.status}`)).toEqual([]);
    expect((await client.call("health", {})).pid).toBe(pid);
    expect((await runCli(["daemon", "stop"], { home, env: { TEAMWORK_NO_AUTOSTART: "1" } })).exitCode).toBe(0);
  }, 60_000);
});
