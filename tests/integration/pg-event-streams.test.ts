// Event streams of daemons on one PostgreSQL database (issue 14 item 5; SCALE-OUT.md §10
// scenario 15): a daemon's watchers see jobs that run elsewhere (here another process writing
// through the store, as another node does), and a watcher that disconnects resumes with
// Last-Event-ID, on the same daemon or on another one, with no gap and no duplicate: the
// ids are the store's cursors, the same on every daemon.

import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DAEMON, FIXTURE_JOBS, startDaemon, tempHome, writeConfig, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import { DAEMON_EXIT } from "../../src/protocol/daemon-exit.js";
import { waitForJob } from "../../src/client/watch.js";

const JOB_WRITER = fileURLToPath(new URL("../fixtures/store/job-writer.mjs", import.meta.url));

interface Frame {
  id: string | null;
  event: string;
  data: unknown;
}

/** A raw event stream on a daemon's socket: every frame with its id, as a watcher gets it. */
function openStream(socket: string, path: string, lastEventId: string | null = null) {
  const frames: Frame[] = [];
  let waiters: (() => void)[] = [];
  let ended = false;
  let buffer = "";
  const poke = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (lastEventId !== null) headers["last-event-id"] = lastEventId;
  const req = request({ socketPath: socket, path, headers }, (res) => {
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id: string | null = null;
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length) frames.push({ id, event, data: JSON.parse(data.join("\n")) });
      }
      poke();
    });
    res.on("end", () => ((ended = true), poke()));
  });
  req.on("error", () => ((ended = true), poke()));
  req.end();
  return {
    frames,
    /** Resolves with the first frame (from `from` on) that `pred` accepts. */
    async until(pred: (f: Frame) => boolean, timeoutMs = 30_000): Promise<Frame> {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; ; ) {
        for (; i < frames.length; i++) if (pred(frames[i]!)) return frames[i]!;
        if (ended) throw new Error(`the stream ended before the frame came (${frames.length} frames)`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for a frame (${frames.length} frames: ${JSON.stringify(frames.slice(-3))})`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () => req.destroy(),
  };
}

const message = (f: Frame) => (f.event === "job:progress" ? (f.data as { message: string }).message : null);
const isFinal = (f: Frame) => f.event === "job:status" && ["complete", "failed", "cancelled"].includes((f.data as { job: { status: string } }).job.status);

/** The job-writer fixture: a process running one job through the store, as another node would. */
async function jobElsewhere(url: string, owner: string, steps: number, logEvery = 0) {
  const child = spawn(process.execPath, [JOB_WRITER, JSON.stringify({ kind: "postgres", url }), owner, String(steps), String(logEvery)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("the job writer ended early");
    return value as string;
  };
  const first = await next();
  const m = /^job (\d+)$/.exec(first);
  if (!m) throw new Error(`unexpected line from the job writer: ${first}`);
  return {
    id: Number(m[1]),
    go: (n?: number) => child.stdin.write(n === undefined ? "go\n" : `go ${n}\n`),
    done: async () => {
      expect(await next()).toBe("done");
    },
    kill: () => child.kill(),
  };
}

describe.skipIf(POSTGRES_SKIPPED !== null)("event streams of daemons on one PostgreSQL database", () => {
  const database = `tw_events_${randomBytes(5).toString("hex")}`;
  const url = pgUrlFor(database);
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.cleanup().catch(() => {});
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const start = async () => {
    const d = await startDaemon({ env: { TEAMWORK_DATABASE_URL: url } });
    daemons.push(d);
    return d;
  };

  it("a daemon's watchers see a job that another process runs through the store, and the daemon's own jobs", async () => {
    const d = await start();
    const job = await jobElsewhere(url, "node-b", 20, 5);
    try {
      const s = openStream(d.paths.socket, `/jobs/${job.id}/events`);
      // The snapshot: running for the other process.
      const snap = await s.until((f) => f.event === "job:status");
      expect(snap.data).toMatchObject({ job: { id: job.id, type: "elsewhere", status: "running", attempts: 1 } });
      const all = openStream(d.paths.socket, "/events");
      await new Promise((r) => setTimeout(r, 50)); // let /events open before the job moves on (it has no snapshot)
      job.go();
      await s.until(isFinal);
      await job.done();
      const after = s.frames.slice(s.frames.indexOf(snap) + 1);
      expect(after.filter((f) => f.event === "job:progress").map(message)).toEqual(Array.from({ length: 20 }, (_, i) => `step ${i + 1} of 20`));
      expect(after.filter((f) => f.event === "job:log").map((f) => (f.data as { message: string }).message)).toEqual(["step 5", "step 10", "step 15", "step 20"]);
      expect(after.at(-1)!.data).toMatchObject({ job: { id: job.id, status: "complete", progress: 100, progressMessage: "step 20 of 20" } });
      // Every id is a cursor of the store, in increasing order on the stream.
      for (const f of after) expect(f.id).toMatch(/^[0-9a-f]{8}\.\d+\.\d+$/);
      // The board-wide stream got the same frames, with the same ids.
      await all.until((f) => isFinal(f) && (f.data as { job: { id: number } }).job.id === job.id);
      const mine = all.frames.filter((f) => (f.data as { jobId?: number; job?: { id: number } }).jobId === job.id || (f.data as { job?: { id: number } }).job?.id === job.id);
      expect(mine.map((f) => f.id)).toEqual(after.map((f) => f.id).slice(-mine.length));
      s.close();
      all.close();

      // The daemon's own job, followed as a client does (jobs.wait): its progress and end come through the store too.
      const { job: own } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 3, stepMs: 300 } });
      const w = openStream(d.paths.socket, `/jobs/${own.id}/events`);
      const done = await waitForJob(d.client, own.id, { timeout: 30_000 });
      expect(done).toMatchObject({ status: "complete", result: { steps: 3 } });
      await w.until(isFinal);
      expect(w.frames.filter((f) => f.event === "job:progress").map(message)).toContain("step 3 of 3");
      w.close();
    } finally {
      job.kill();
    }
  });

  it("a watcher that disconnects halfway through 200 progress events resumes with Last-Event-ID, on the same daemon and on another one started after the first stopped: no gap, no duplicate", async () => {
    const a = await start();
    const job = await jobElsewhere(url, "node-c", 200);
    try {
      const first = openStream(a.paths.socket, `/jobs/${job.id}/events`);
      await first.until((f) => f.event === "job:status");
      job.go(100);
      const half = await first.until((f) => message(f) === "step 100 of 200");
      first.close();
      const lastId = half.id!;
      expect(first.frames.filter((f) => f.event === "job:progress").map(message)).toEqual(Array.from({ length: 100 }, (_, i) => `step ${i + 1} of 200`));
      // The job goes on while nobody watches.
      job.go();
      await job.done();

      const rest = Array.from({ length: 100 }, (_, i) => `step ${i + 101} of 200`);
      const again = openStream(a.paths.socket, `/jobs/${job.id}/events`, lastId);
      await again.until(isFinal);
      again.close();
      expect(again.frames.some((f) => f.event === "reset")).toBe(false);
      expect(again.frames.filter((f) => f.event === "job:progress").map(message)).toEqual(rest);
      expect(again.frames.at(-1)!.data).toMatchObject({ job: { status: "complete" } });
      const ids = again.frames.map((f) => f.id);

      // Another daemon, started after the first stopped, serves the same resume: the ids are the database's.
      expect(await a.stop()).toBe(0);
      const b = await start();
      const onB = openStream(b.paths.socket, `/jobs/${job.id}/events`, lastId);
      await onB.until(isFinal);
      onB.close();
      expect(onB.frames.map((f) => f.id)).toEqual(ids);
      expect(onB.frames.filter((f) => f.event === "job:progress").map(message)).toEqual(rest);
      // And so does its board-wide stream, from the same id.
      const allB = openStream(b.paths.socket, "/events", lastId);
      await allB.until((f) => isFinal(f) && (f.data as { job: { id: number } }).job.id === job.id);
      allB.close();
      expect(allB.frames.filter((f) => f.event === "job:progress").map(message)).toEqual(rest);
      // An id that is not a cursor of this database is answered reset, then the job's state.
      const foreign = openStream(b.paths.socket, `/jobs/${job.id}/events`, "0a1b2c3d-42");
      await foreign.until((f) => f.event === "job:status");
      foreign.close();
      expect(foreign.frames[0]).toMatchObject({ event: "reset" });
    } finally {
      job.kill();
    }
  });

  it("two daemons at once: a watcher on one follows a job running on the other and moves between them (skipped while a second daemon on a database is refused)", async (ctx) => {
    const a = await start();
    // A second daemon on the same database: refused (exit 10) until nodes land.
    const home = tempHome();
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });
    const probe = spawn(process.execPath, [DAEMON, "--home", home, "--log-file", join(home, "daemon.log")], { stdio: "ignore", env: { ...process.env, TEAMWORK_DATABASE_URL: url } });
    const refused = await Promise.race([
      new Promise<number | null>((r) => probe.on("exit", r)),
      waitFor(async () => {
        try {
          return readFileSync(join(home, "daemon.log"), "utf8").includes("daemon.started") ? "started" : null;
        } catch {
          return null;
        }
      }, { timeoutMs: 20_000, what: "the second daemon to start or exit" }),
    ]);
    if (refused === DAEMON_EXIT.alreadyRunning) {
      ctx.skip("a second daemon on one PostgreSQL database is refused (exit 10, daemon.database_taken) until several nodes per database land");
      return;
    }
    probe.kill();
    await new Promise((r) => probe.on("exit", r));
    const b = await startDaemon({ home, env: { TEAMWORK_DATABASE_URL: url } });
    daemons.push(b);
    // The job runs on A (its queue takes it; B's is paused), the watcher starts on B.
    await b.client.call("queuePause", {});
    const { job } = await a.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 8, stepMs: 300 } });
    const onB = openStream(b.paths.socket, `/jobs/${job.id}/events`);
    const mid = await onB.until((f) => f.event === "job:progress");
    onB.close();
    const onA = openStream(a.paths.socket, `/jobs/${job.id}/events`, mid.id);
    await onA.until(isFinal);
    onA.close();
    const seen = [...onB.frames.slice(0, onB.frames.indexOf(mid) + 1), ...onA.frames];
    const ids = seen.filter((f) => f.id !== null && f !== seen[0]).map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    const progress = seen.filter((f) => f.event === "job:progress").map((f) => (f.data as { progress: number }).progress);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(seen.at(-1)!.data).toMatchObject({ job: { status: "complete" } });
  });
});

// Events are written only while some daemon watches (migration 008): a database of its own,
// so that no watch of the tests above (left to lapse with its lease when their daemons
// stopped) is still in force.
describe.skipIf(POSTGRES_SKIPPED !== null)("event streams on PostgreSQL: events only while someone watches", { timeout: 120_000 }, () => {
  const database = `tw_events_gate_${randomBytes(5).toString("hex")}`;
  const url = pgUrlFor(database);
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  const db = new pg.Client({ connectionString: url });
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await db.connect();
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.cleanup().catch(() => {});
  });
  afterAll(async () => {
    await db.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const start = async () => {
    const d = await startDaemon({ env: { TEAMWORK_DATABASE_URL: url } });
    daemons.push(d);
    return d;
  };
  const eventRows = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM job_events")).rows[0]!.n;
  const recording = async () => (await db.query<{ recording: boolean }>("SELECT recording FROM job_event_log")).rows[0]!.recording;
  /** Waits for a job's end by reading it (jobs wait would open an event stream: a watcher). */
  const ended = async (client: TestDaemon["client"], id: number) => {
    await waitFor(async () => ["complete", "failed", "cancelled"].includes((await client.call("jobsGet", { id })).job.status), { timeoutMs: 30_000, what: `job ${id} to end` });
    return (await client.call("jobsGet", { id })).job;
  };
  const jobId = (f: Frame) => (f.data as { jobId?: number; job?: { id: number } }).jobId ?? (f.data as { job?: { id: number } }).job?.id;

  it("nobody watching: jobs run on two daemons and another process, and no event is written; a watcher on one daemon makes every node's jobs flow to it", async () => {
    const a = await start();
    const b = await start();
    expect(await recording()).toBe(false);
    // Jobs on both daemons, and one run by another process through the store: no events.
    await b.client.call("queuePause", {});
    const { job: onA } = await a.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 3, stepMs: 10 } });
    expect(await ended(a.client, onA.id)).toMatchObject({ status: "complete" });
    await b.client.call("queueResume", {});
    await a.client.call("queuePause", {});
    const { job: onB } = await b.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 3, stepMs: 10 } });
    expect(await ended(b.client, onB.id)).toMatchObject({ status: "complete" });
    const quiet = await jobElsewhere(url, "node-q", 5, 2);
    quiet.go();
    await quiet.done();
    quiet.kill();
    expect(await eventRows()).toBe(0);
    expect(await recording()).toBe(false);

    // A watcher on A: recording is on for every writer (A is paused: the job runs on B).
    const all = openStream(a.paths.socket, "/events");
    await waitFor(recording, { timeoutMs: 30_000, what: "recording to start" });
    const { job: next } = await a.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 3, stepMs: 10 } });
    await all.until((f) => isFinal(f) && jobId(f) === next.id);
    expect(all.frames.filter((f) => jobId(f) === next.id && f.event === "job:progress").map(message)).toContain("step 3 of 3");
    expect((await a.client.call("jobsGet", { id: next.id })).job).toMatchObject({ status: "complete" });
    // ...and another process's job too.
    const loud = await jobElsewhere(url, "node-l", 4);
    loud.go();
    await loud.done();
    await all.until((f) => isFinal(f) && jobId(f) === loud.id);
    expect(all.frames.filter((f) => jobId(f) === loud.id && f.event === "job:progress").map(message)).toEqual(["step 1 of 4", "step 2 of 4", "step 3 of 4", "step 4 of 4"]);
    loud.kill();
    all.close();
    expect(await eventRows()).toBeGreaterThan(0);
  });

  it("a resume across a spell when nobody watched is told to reset, then gets the job's state: never a silent gap", async () => {
    const a = await start();
    const b = await start();
    await b.client.call("queuePause", {});
    const job = await jobElsewhere(url, "node-g", 10);
    try {
      const first = openStream(a.paths.socket, `/jobs/${job.id}/events`);
      await first.until((f) => f.event === "job:status");
      job.go(4);
      const mid = await first.until((f) => message(f) === "step 4 of 10");
      first.close();
      // A goes, and its watch with it: left to lapse with its lease at a stop (a daemon
      // restarted within it resumes its watchers with no gap), here made to lapse at once;
      // B's rescue sweeps it.
      expect(await a.stop()).toBe(0);
      await db.query("UPDATE job_event_watchers SET lease_until = now() - interval '1 second'");
      await waitFor(async () => !(await recording()), { timeoutMs: 30_000, what: "B's rescue to sweep the lapsed watch" });
      // The job moves on while nobody watches: nothing is written.
      const rows = await eventRows();
      job.go();
      await job.done();
      expect(await eventRows()).toBe(rows);

      // The watcher comes back on B with its last id: reset, then the job as it is now.
      const again = openStream(b.paths.socket, `/jobs/${job.id}/events`, mid.id);
      const state = await again.until((f) => f.event === "job:status");
      again.close();
      expect(again.frames[0]).toMatchObject({ event: "reset", data: { reason: expect.stringContaining("not all recorded") } });
      expect(state.data).toMatchObject({ job: { id: job.id, status: "complete", progressMessage: "step 10 of 10" } });
      expect(again.frames.filter((f) => f.event === "job:progress")).toEqual([]);
    } finally {
      job.kill();
    }
  });
});
