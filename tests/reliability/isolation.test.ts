// Process isolation (issue 18, item 5): a job type declared `isolation: "process"` runs in a
// child process under a memory cap the kernel enforces, so native memory, a segfault or an
// abort there fail that job alone. Real daemon, real child processes, real signals; the
// daemon's memory is read from /proc.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { FIXTURE_JOBS, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import type { Job } from "../../src/protocol/types.js";
import { loadConfig } from "../../src/config/config.js";

const ISOLATION_JOBS = fileURLToPath(new URL("../fixtures/jobs/isolation.mjs", import.meta.url));
const PROCESS_ENTRY = fileURLToPath(new URL("../../dist/queue/worker/process.js", import.meta.url));

/** VmRSS of a process, in MiB. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Alive and not a zombie (an orphan's zombie may wait a while for init to reap it). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** Live processes whose parent is pid. */
function childrenOf(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== pid || /^State:\s+Z/m.test(status)) continue;
      out.push({ pid: Number(name), cmdline: readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ") });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, ISOLATION_JOBS], concurrency: 2, cancelGrace: "1s", shutdownGrace: "1s" } });
});
afterAll(async () => {
  await d?.cleanup();
});

const get = async (id: number) => (await d.client.call("jobsGet", { id })).job;
const until = (id: number, pred: (j: Job) => boolean, timeoutMs = 20_000, what = `job ${id}`) =>
  waitFor(async () => {
    const j = await get(id);
    return pred(j) ? j : null;
  }, { timeoutMs, what });
const ended = (id: number, timeoutMs?: number) => until(id, (j) => ["complete", "failed", "cancelled"].includes(j.status), timeoutMs);
const enqueue = async (type: string, payload: unknown = {}) => (await d.client.call("jobsEnqueue", { type, payload: payload as never })).job;
/** The pid a process-hang job reported in its progress message. */
const hangPid = async (id: number) => Number(/pid (\d+)/.exec((await until(id, (j) => /pid \d+/.test(j.progressMessage ?? ""), 20_000, `job ${id} reports its pid`)).progressMessage!)![1]);

describe("process isolation", () => {
  it("2 GiB of Buffers under a 256 MiB cap fail that job alone; the daemon stays small; the next job runs", async () => {
    const before = rssMb(d.pid);
    const hog = await enqueue("native-hog", { mb: 2048 });
    // Sample the daemon's RSS while the hog runs: it must never carry the hog's memory.
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(d.pid))), 20);
    const neighbour = await enqueue("noop", { n: 1 });
    let end: Job;
    try {
      end = await ended(hog.id, 60_000);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssMb(d.pid));
    expect(peak, `daemon RSS went from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`).toBeLessThan(before + 200);
    expect(end.status, JSON.stringify(end)).toBe("failed");
    expect(end.error).toMatch(/memory cap 256 MiB/);
    expect((await ended(neighbour.id)).status).toBe("complete");
    // The daemon is fine and the type still works.
    expect((await d.client.call("health", {})).pid).toBe(d.pid);
    const small = await ended((await enqueue("native-hog", { mb: 64 })).id);
    expect(small.status, JSON.stringify(small)).toBe("complete");
    expect((small.result as { pid: number }).pid).not.toBe(d.pid);
  }, 90_000);

  it("a job whose process segfaults or aborts fails alone with the signal named", async () => {
    const segv = await enqueue("self-destruct", { how: "segv" });
    const abort = await enqueue("self-destruct", { how: "abort" });
    const neighbour = await enqueue("noop", { n: 2 });
    const s = await ended(segv.id);
    expect(s.status).toBe("failed");
    expect(s.error).toMatch(/worker process killed by SIGSEGV/);
    const a = await ended(abort.id);
    expect(a.status).toBe("failed");
    expect(a.error).toMatch(/worker process killed by SIGABRT/);
    expect((await ended(neighbour.id)).status).toBe("complete");
    const next = await ended((await enqueue("where")).id);
    expect(next.status).toBe("complete");
    expect((next.result as { pid: number }).pid).not.toBe(d.pid);
  }, 60_000);

  it("cancel and timeout of a hanging process job kill its process", async () => {
    const busy = await enqueue("process-hang", { busy: true });
    const pid = await hangPid(busy.id);
    expect(alive(pid)).toBe(true);
    await d.client.call("jobsCancel", { id: busy.id });
    expect((await ended(busy.id)).status).toBe("cancelled");
    await waitFor(() => !alive(pid), { timeoutMs: 15_000, what: `process ${pid} of the cancelled job to be gone` });

    const timed = await enqueue("process-hang-short", { busy: true });
    const pid2 = await hangPid(timed.id);
    const t = await ended(timed.id);
    expect(t.status).toBe("failed");
    expect(t.error).toMatch(/timed out/);
    await waitFor(() => !alive(pid2), { timeoutMs: 15_000, what: `process ${pid2} of the timed-out job to be gone` });
  }, 60_000);

  it("thumbnail runs in a process by default and still works end to end", async () => {
    const status = (await d.client.call("daemonStatus", {})) as unknown as { isolation: { processTypes: string[]; memoryCap: string } };
    expect(status.isolation.processTypes).toContain("thumbnail");
    expect(status.isolation.memoryCap).toMatch(/RLIMIT_DATA|cgroup/);
    expect(d.log()).toMatch(/jobs\.isolation.*thumbnail/);
    const src = join(d.paths.uploads, "isolation-photo.png");
    await sharp({ create: { width: 900, height: 600, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toFile(src);
    const job = await ended((await enqueue("thumbnail", { source: "isolation-photo.png", maxSize: 64 })).id);
    expect(job.status, JSON.stringify(job)).toBe("complete");
    const result = job.result as { artifact: string; width: number; height: number };
    expect([result.width, result.height]).toEqual([64, 43]);
    const dl = await d.client.download("jobsArtifact", { id: job.id, name: result.artifact });
    const chunks: Buffer[] = [];
    for await (const c of dl.body) chunks.push(c as Buffer);
    expect((await sharp(Buffer.concat(chunks)).metadata()).width).toBe(64);
    // sharp's native library was loaded by a worker process (warm until it retires), not by the daemon.
    const loadedVips = (pid: number) => readFileSync(`/proc/${pid}/maps`, "utf8").includes("libvips");
    expect(childrenOf(d.pid).some((c) => c.cmdline.includes("worker/process.js") && loadedVips(c.pid))).toBe(true);
    expect(loadedVips(d.pid)).toBe(false);
  }, 60_000);

  it("a graceful stop of the daemon leaves no worker process alive", async () => {
    const busy = await enqueue("process-hang", { busy: true });
    const pid = await hangPid(busy.id);
    await d.stop();
    expect(alive(pid)).toBe(false);
    await d.restart();
    // The stop put it back to pending; it would hang again and hold a slot.
    await d.client.call("jobsCancel", { id: busy.id });
    await ended(busy.id);
  }, 60_000);

  it("kill -9 of the daemon leaves no worker process alive", async () => {
    const busy = await enqueue("process-hang", { busy: true });
    const waiting = await enqueue("process-hang", {});
    const pids = [await hangPid(busy.id), await hangPid(waiting.id)];
    for (const pid of pids) expect(alive(pid)).toBe(true);
    await d.kill9();
    await waitFor(() => pids.every((pid) => !alive(pid)), { timeoutMs: 15_000, what: `worker processes ${pids.join(", ")} to die with the daemon` });
    await d.restart();
    for (const job of [busy, waiting]) await d.client.call("jobsCancel", { id: job.id }).catch(() => null);
  }, 60_000);
});

describe("jobIsolation in the config", () => {
  it("overrides a type's declared isolation, and refuses a mode it does not know", async () => {
    expect(loadConfig({ configFile: "/nonexistent", env: { TEAMWORK_JOB_ISOLATION: "thumbnail=thread, where=process" } }).jobIsolation).toEqual({ thumbnail: "thread", where: "process" });
    expect(() => loadConfig({ configFile: "/nonexistent", env: { TEAMWORK_JOB_ISOLATION: "thumbnail=fork" } })).toThrow(/TEAMWORK_JOB_ISOLATION thumbnail: must be one of thread, process, got "fork"/);
    const other = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, ISOLATION_JOBS], jobIsolation: { thumbnail: "thread", where: "thread" } } });
    try {
      const status = (await other.client.call("daemonStatus", {})) as unknown as { isolation: { processTypes: string[] } };
      expect(status.isolation.processTypes).not.toContain("thumbnail");
      expect(status.isolation.processTypes).toContain("native-hog");
      const { job } = await other.client.call("jobsEnqueue", { type: "where" });
      const done = await waitFor(async () => {
        const j = (await other.client.call("jobsGet", { id: job.id })).job;
        return j.status === "complete" ? j : null;
      }, { what: "the where job" });
      expect((done.result as { pid: number }).pid).toBe(other.pid);
    } finally {
      await other.cleanup();
    }
  }, 60_000);
});

describe("process worker entry", () => {
  it("exits when its IPC channel closes, even with a job that ignores its AbortSignal", async () => {
    const { home, paths } = d;
    const child = spawn(process.execPath, [PROCESS_ENTRY], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const ready = new Promise<void>((r) => child.on("message", (m: { t: string }) => m.t === "ready" && r()));
    const progressed = new Promise<void>((r) => child.on("message", (m: { t: string }) => m.t === "progress" && r()));
    child.send({ t: "init", data: { modules: [ISOLATION_JOBS], paths: { ...paths, home } as never, settings: {} as never } });
    await ready;
    child.send({ t: "start", jobs: [{ jobId: 1, attempt: 1, type: "process-hang", payload: {}, state: null }] });
    await progressed;
    child.disconnect();
    expect(await exited).not.toBeNull();
    expect(existsSync(`/proc/${child.pid}`) && alive(child.pid!)).toBe(false);
  }, 30_000);
});
