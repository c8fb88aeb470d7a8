// Several daemons on one PostgreSQL database, as nodes (issue 14, item 2; SCALE-OUT.md §9, §10
// scenarios 2 and 4): real daemon processes on temp homes, a fresh database for this file.
// - both run jobs from the one queue; `teamwork nodes` lists both;
// - kill -9 of the node running a long job: the other completes it within 5 s;
// - SIGSTOP of the node running a job: the other takes it within 5 s; after SIGCONT the frozen
//   node fences itself, its late writes are refused (the job stays the other's), and it
//   registers again under a new id.
// The measured times are printed (console.log) beside the bound they are held to.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import type { Job, NodeInfo } from "../../src/protocol/types.js";

/** The bound SCALE-OUT.md and issue 14 hold recovery to. */
const RECOVERY_BOUND_MS = 5000;

describe.skipIf(POSTGRES_SKIPPED !== null)("daemons sharing one PostgreSQL database (nodes)", () => {
  const database = `tw_nodes_${randomBytes(5).toString("hex")}`;
  const url = pgUrlFor(database);
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  const db = new pg.Client({ connectionString: url });
  let a: TestDaemon;
  let b: TestDaemon;

  const start = () => startDaemon({ env: { TEAMWORK_DATABASE_URL: url }, config: { concurrency: 2 } });

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    a = await start();
    b = await start();
    await db.connect();
  }, 60_000);
  afterAll(async () => {
    for (const d of [a, b]) {
      // A daemon a test left stopped must be able to hear SIGTERM.
      d?.process.kill("SIGCONT");
      await d?.cleanup().catch(() => {});
    }
    await db.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const job = async (d: TestDaemon, id: number): Promise<Job> => (await d.client.call("jobsGet", { id })).job;
  /** The pid of the daemon whose node the job runs for (null while it runs for none). */
  const runnerPid = async (id: number): Promise<number | null> =>
    (await db.query<{ pid: number }>(`SELECT n.pid FROM jobs j JOIN nodes n ON n.id = j.owner WHERE j.id = $1 AND j.status = 'running' AND j.started_at IS NOT NULL`, [id])).rows[0]?.pid ?? null;
  const nodeRows = async () => (await db.query<{ id: string; pid: number }>(`SELECT id, pid FROM nodes ORDER BY started_at`)).rows;

  /** A job of n ms on its first attempt, started on one of the daemons: that one, and the other. */
  async function longJobOn(retryMs: number): Promise<{ id: number; victim: TestDaemon; survivor: TestDaemon }> {
    const { job: j } = await a.client.call("jobsEnqueue", { type: "nap", payload: { ms: 120_000, retryMs } });
    const pid = await waitFor(() => runnerPid(j.id), { timeoutMs: 15_000, what: "the long job to start on a node" });
    const [victim, survivor] = pid === a.pid ? [a, b] : [b, a];
    return { id: j.id, victim, survivor };
  }

  it("both daemons run jobs from the one queue; `teamwork nodes` lists both, marking the one asked", async () => {
    const nodes = await waitFor(async () => {
      const r = await runCli(["nodes", "--json"], { home: a.home });
      const list = (JSON.parse(r.stdout) as { nodes: NodeInfo[] }).nodes;
      return list.length === 2 ? list : null;
    });
    expect(nodes.map((n) => n.pid).sort()).toEqual([a.pid, b.pid].sort());
    expect(nodes.find((n) => n.self)?.pid).toBe(a.pid);
    expect(nodes.filter((n) => n.self)).toHaveLength(1);
    const status = (await a.client.call("daemonStatus", {})) as { node?: string };
    expect(nodes.find((n) => n.self)?.id).toBe(status.node);

    // 16 jobs of 400 ms, all enqueued through a: with 2 slots a alone would take 3.2 s; b
    // claims its share (its claim poll finds them).
    const { jobs } = await a.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 16 }, () => ({ type: "nap", payload: { ms: 400 } })) });
    const done = await waitFor(
      async () => {
        const all = await Promise.all(jobs.map((r) => job(a, r.job.id)));
        return all.every((j) => j.status === "complete") ? all : null;
      },
      { timeoutMs: 30_000, what: "16 jobs complete" },
    );
    const by = new Set(done.map((j) => (j.result as { pid: number }).pid));
    expect(by).toEqual(new Set([a.pid, b.pid]));
    expect(done.every((j) => j.attempts === 1)).toBe(true);

    const table = await runCli(["nodes"], { home: b.home });
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toMatch(/NODE\s+HOST\s+PID\s+STARTED\s+LAST HEARTBEAT\s+RUNNING/);
    expect(table.stdout).toContain(String(a.pid));
    expect(table.stdout).toContain(String(b.pid));
    expect(table.stdout).toMatch(new RegExp(`\\* .*\\b${b.pid}\\b`));
  });

  it("kill -9 of the node running a long job: the other daemon completes it within 5 s, as attempt 2", async () => {
    const { id, victim, survivor } = await longJobOn(200);
    const t0 = Date.now();
    await victim.kill9();
    const done = await waitFor(
      async () => {
        const j = await job(survivor, id);
        return j.status === "complete" ? j : null;
      },
      { timeoutMs: 20_000, intervalMs: 10, what: "the job completed by the other daemon" },
    );
    const elapsed = Date.now() - t0;
    console.log(`[nodes] kill -9: job back and completed by the other daemon in ${elapsed} ms (bound ${RECOVERY_BOUND_MS} ms)`);
    expect(elapsed).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    expect(done.attempts).toBe(2);
    expect((done.result as { pid: number }).pid).toBe(survivor.pid);
    expect(done.errors[0]).toMatchObject({ attempt: 1, message: "interrupted: the daemon stopped while this attempt was running" });
    // The dead node is gone from the table; the survivor logged the rescue.
    expect((await nodeRows()).map((n) => n.pid)).toEqual([survivor.pid]);
    expect(survivor.log()).toContain("nodes.rescued");

    await victim.restart();
    await waitFor(async () => (await nodeRows()).length === 2, { what: "the restarted daemon registered" });
  });

  it("SIGSTOP of the node running a job: rescued by the other within 5 s; after SIGCONT it fences, its late writes are refused, it registers under a new id", async () => {
    const { id, victim, survivor } = await longJobOn(1000);
    const oldId = (await nodeRows()).find((n) => n.pid === victim.pid)!.id;
    const t0 = Date.now();
    victim.process.kill("SIGSTOP");
    let resumed = false;
    try {
      const rescued = await waitFor(
        async () => {
          const r = await db.query<{ attempts: number; pid: number | null }>(`SELECT j.attempts, n.pid FROM jobs j LEFT JOIN nodes n ON n.id = j.owner WHERE j.id = $1`, [id]);
          const row = r.rows[0]!;
          return row.attempts === 2 && row.pid === survivor.pid ? row : null;
        },
        { timeoutMs: 20_000, intervalMs: 10, what: "the frozen node's job running on the other" },
      );
      const elapsed = Date.now() - t0;
      console.log(`[nodes] SIGSTOP: job rescued and running on the other daemon in ${elapsed} ms (bound ${RECOVERY_BOUND_MS} ms)`);
      expect(elapsed).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(rescued.attempts).toBe(2);
      const done = await waitFor(
        async () => {
          const j = await job(survivor, id);
          return j.status === "complete" ? j : null;
        },
        { timeoutMs: 15_000, what: "the job completed by the other daemon" },
      );
      expect((done.result as { pid: number }).pid).toBe(survivor.pid);

      victim.process.kill("SIGCONT");
      resumed = true;
      // It fences itself (its lease is gone), stops the attempt it still held, whose late
      // finish the store refuses, and registers under a new id.
      await waitFor(() => victim.log().includes(" node.rejoined "), { timeoutMs: 20_000, what: "the frozen node to register again" });
      const log = victim.log();
      expect(log).toContain("node.fenced");
      await waitFor(() => new RegExp(`job\\.write_refused .*\\bjob=${id}\\b`).test(victim.log()), { timeoutMs: 10_000, what: "its late write refused" });
      const newRow = await waitFor(async () => (await nodeRows()).find((n) => n.pid === victim.pid) ?? null, { what: "its new node row" });
      expect(newRow.id).not.toBe(oldId);
      expect((await victim.client.call("daemonStatus", {})) as { node?: string }).toMatchObject({ node: newRow.id });

      // The job is as the other daemon left it.
      const after = await job(survivor, id);
      expect(after).toMatchObject({ status: "complete", attempts: 2 });
      expect((after.result as { pid: number }).pid).toBe(survivor.pid);

      const listed = (JSON.parse((await runCli(["nodes", "--json"], { home: victim.home })).stdout) as { nodes: NodeInfo[] }).nodes;
      expect(listed.map((n) => n.pid).sort()).toEqual([a.pid, b.pid].sort());
      expect(listed.find((n) => n.self)?.id).toBe(newRow.id);

      // And it runs jobs again, under its new id.
      const { jobs } = await victim.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 6 }, () => ({ type: "nap", payload: { ms: 300 } })) });
      await waitFor(async () => (await Promise.all(jobs.map((r) => job(victim, r.job.id)))).every((j) => j.status === "complete"), { timeoutMs: 20_000, what: "jobs after the rejoin" });
    } finally {
      if (!resumed) victim.process.kill("SIGCONT");
    }
  });
});
