// Disk and database faults: the database locked by another process, a corrupted database
// file, a full disk. Each gets a clear error, loses nothing acknowledged, and never crashes
// the daemon (or, for a corrupt file, never overwrites it).

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, tempHome, writeConfig, FIXTURE_JOBS, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";

let d: TestDaemon | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
  for (const c of cleanups.splice(0)) c();
});

describe("database faults", () => {
  it("a database locked by another process: writes fail with a clear 503, reads go on, and it recovers", async () => {
    d = await startDaemon();
    const { task } = await d.client.call("tasksAdd", { title: "before the lock" });
    const other = new Database(d.paths.database);
    other.pragma("busy_timeout = 0");
    other.exec("BEGIN IMMEDIATE"); // holds the write lock, as another writer would
    try {
      await expect(d.client.call("tasksAdd", { title: "while locked" })).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/locked by another process; nothing was changed/) });
      await expect(d.client.call("jobsEnqueue", { type: "noop" })).rejects.toMatchObject({ code: "unavailable" });
      expect((await d.client.call("tasksGet", { id: task.id })).task.title).toBe("before the lock");
      const cli = await runCli(["tasks", "add", "cli while locked"], { home: d.home });
      expect(cli.exitCode).toBe(1);
      expect(cli.stderr).toMatch(/locked by another process/);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    await d.client.call("tasksAdd", { title: "after the lock" });
    const { job } = await d.client.call("jobsEnqueue", { type: "noop" });
    expect(job.id).toBeGreaterThan(0);
    const titles = (await d.client.call("tasksList", {})).tasks.map((t) => t.title);
    expect(titles).toEqual(["before the lock", "after the lock"]);
    expect(d.log()).not.toMatch(/daemon\.uncaught_exception/);
  }, 30_000);

  it("a corrupted database: the daemon refuses to start with a clear message and leaves the file alone", async () => {
    const home = tempHome();
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });
    const garbage = Buffer.alloc(64 * 1024, 0x5a);
    writeFileSync(join(home, "teamwork.db"), garbage);
    const r = await runCli(["tasks", "list"], { home });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/failed to start/);
    expect(r.stderr).toMatch(/not a database/);
    expect(readFileSync(join(home, "teamwork.db")).equals(garbage)).toBe(true);
    // No daemon is left running or restarting.
    const again = await runCli(["daemon", "status"], { home });
    expect(again.exitCode).toBe(3);
  });
});

describe("a full disk", () => {
  it("refuses writes with a clear error, keeps what was acknowledged, and recovers", async () => {
    const mnt = mkdtempSync(join(tmpdir(), "tw-full-"));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]);
    } catch {
      rmSync(mnt, { recursive: true, force: true });
      console.warn("skipped: cannot mount a tmpfs here");
      return;
    }
    cleanups.push(() => {
      try {
        execFileSync("umount", [mnt]);
      } catch {
        // already gone
      }
      rmSync(mnt, { recursive: true, force: true });
    });
    const home = join(mnt, "home");
    mkdirSync(home);
    d = await startDaemon({ home });
    const acked: number[] = [];
    for (let i = 0; i < 20; i++) acked.push((await d.client.call("tasksAdd", { title: `task ${i}` })).task.id);
    // Fill the disk.
    const filler = join(mnt, "filler");
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k", "count=1000"], { stdio: "ignore" });
    } catch {
      // dd stops when the disk is full
    }
    let refused = 0;
    for (let i = 0; i < 200 && refused === 0; i++) {
      try {
        acked.push((await d.client.call("tasksAdd", { title: "x".repeat(400) + i })).task.id);
      } catch (err) {
        expect((err as { code?: string }).code).toBe("unavailable");
        expect((err as Error).message).toMatch(/disk is full|I\/O error|database failed/);
        refused++;
      }
    }
    expect(refused).toBe(1);
    // Reads go on, and every acknowledged task is there.
    const listed = new Set((await d.client.call("tasksList", {})).tasks.map((t) => t.id));
    for (const id of acked) expect(listed.has(id)).toBe(true);
    expect((await d.client.call("health", {})).ok).toBe(true);
    rmSync(filler, { force: true });
    const { task } = await d.client.call("tasksAdd", { title: "after" });
    expect(task.title).toBe("after");
    await d.stop();
    d.client.close();
    d = undefined;
  }, 60_000);
});
