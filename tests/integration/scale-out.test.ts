// Scale-out on PostgreSQL (issue 14 item 7, SCALE-OUT.md §10): real daemons, each reaching a
// fresh database through its own fault proxy, running the ledger job type; the ledger and the
// jobs' final states are the oracle (no job lost, none done twice, no two attempts of one job
// running at once beyond a bound).
//
// "One daemon" runs on every build. "Several daemons" needs nodes (a second daemon on the same
// database); a build that refuses the second daemon (one daemon per database) skips that suite
// and says so.
//
// Run: TEAMWORK_TEST_PG=1 npx vitest run tests/integration/scale-out.test.ts (PostgreSQL on
// 127.0.0.1:5432, or TEAMWORK_TEST_PG_URL). Without PostgreSQL the suites are skipped, saying
// so; under CI (or TEAMWORK_TEST_PG=1) they fail instead (tests/store/factory.ts).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "../../src/client/client.js";
import { NodeRefused, startCluster, type Cluster, type ClusterNode } from "../helpers/cluster.js";
import { describeReport, FENCED_RERUNS, type LedgerEntry, type LedgerReport } from "../helpers/ledger.js";
import { POSTGRES_SKIPPED } from "../store/factory.js";
import type { Json } from "../../src/protocol/types.js";

const SCENARIO_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const wallNow = () => performance.timeOrigin + performance.now();

/** Enqueues ledger jobs with these payloads through a node, in one call; their ids. */
async function enqueue(node: ClusterNode, payloads: { [k: string]: Json }[], extra: { priority?: number; maxAttempts?: number } = {}): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < payloads.length; i += 1000) {
    const r = await node.client.call("jobsEnqueueBatchIds", { jobs: payloads.slice(i, i + 1000).map((payload) => ({ type: "ledger", payload, ...extra })) });
    ids.push(...r.ids);
  }
  return ids;
}

/** The ledger's line for a job's attempt and event, once written. */
function lineOf(c: Cluster, job: number, event: LedgerEntry["event"], attempt?: number): LedgerEntry | undefined {
  return c.ledger().find((l) => l.job === job && l.event === event && (attempt === undefined || l.attempt === attempt));
}

async function waitLine(c: Cluster, job: number, event: LedgerEntry["event"], attempt?: number, timeoutMs = 20_000): Promise<LedgerEntry> {
  return (await c.waitFor(() => lineOf(c, job, event, attempt), (l) => l !== undefined, timeoutMs, `job ${job}${attempt ? ` attempt ${attempt}` : ""} to write "${event}" in the ledger`))!;
}

/** Waits until every ledger job is complete (read through a healthy node); returns them. */
async function allComplete(c: Cluster, timeoutMs = 60_000) {
  return c.waitFor(() => c.allJobs(), (jobs) => jobs.length > 0 && jobs.every((j) => j.status === "complete"), timeoutMs, "every ledger job to be complete");
}

function expectClean(r: LedgerReport): void {
  expect(r.violations, describeReport(r)).toEqual([]);
}

/**
 * A node that could not renew its lease for 2 s fences itself and registers under a new id
 * (nodes, SCALE-OUT.md §9.4): the attempts it ran are handed back and run again, whether or not
 * their work had ended meanwhile (an end whose completion could not be written before the fence,
 * or written by a worker thread that resumed with its process). Those ends are late: the queue
 * kept a later attempt's (at least once). What may not happen: an attempt counted twice, a late
 * end the queue kept, two attempts at once past the self-fence bound.
 */

/** The node fenced itself and registered again (its log says so). */
function expectFencedAndRejoined(n: ClusterNode): void {
  expect(n.log()).toContain(" node.fenced ");
  expect(n.log()).toContain(" node.rejoined ");
}

describe.skipIf(POSTGRES_SKIPPED !== null)("scale-out on PostgreSQL: one daemon through its fault proxy", () => {
  let c: Cluster;
  beforeEach(async () => {
    c = await startCluster(1, { config: { concurrency: 4 } });
  });
  afterEach(async () => {
    const crashed = c?.unexpectedExits() ?? [];
    await c?.teardown();
    expect(crashed.map((u) => `${u.node} exited (code ${u.code}, signal ${u.signal})`)).toEqual([]);
  });

  it("runs every job once, every byte through its proxy", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const ids = await enqueue(n, [...Array.from({ length: 300 }, () => ({})), ...Array.from({ length: 8 }, () => ({ ms: 200, tickMs: 50 }))]);
    const jobs = await allComplete(c);
    expect(jobs.map((j) => j.id).sort((a, b) => a - b)).toEqual(ids);
    expect(jobs.every((j) => j.attempts === 1)).toBe(true);
    const r = await c.check(ids);
    expectClean(r);
    expect(r).toMatchObject({ starts: 308, ends: 308, lateEnds: [] });
    expect(n.proxy.stats().accepted).toBeGreaterThan(0);
    expect(n.proxy.stats().bytesDown).toBeGreaterThan(0);
  });

  it("blackhole: the daemon stays up, a command fails with a clear error instead of hanging; it fences itself, and after heal registers again and every job is done (a cut off attempt again)", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const [running] = await enqueue(n, [{ ms: 1500, tickMs: 100 }]);
    await waitLine(c, running!, "tick");
    await enqueue(n, Array.from({ length: 20 }, () => ({})));
    const pid = n.pid;

    n.proxy.blackhole();
    // Up, and the same process: /health needs no database.
    expect((await n.client.call("health", {})).pid).toBe(pid);
    // A command that needs the database ends with the database's error, exit 3, before the
    // CLI's own timeout (10 s), never a hang: a statement on a pooled connection has a deadline
    // too (store/postgres/connect.ts; more in postgres-unreachable.test.ts).
    const t0 = Date.now();
    const list = await n.cli(["jobs", "list"], { timeoutMs: 60_000 });
    expect(list.exitCode, list.stdout + list.stderr).toBe(3);
    expect(list.stderr).toMatch(/database unreachable: /);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // An enqueue cannot be committed while the database cannot be heard: it fails (it may still
    // be committed once the partition heals; then it runs, once).
    const short = new Client({ socket: n.paths.socket, keepAlive: false, timeoutMs: 2_000 });
    await expect(short.call("jobsEnqueue", { type: "ledger", payload: {} })).rejects.toThrow();
    short.close();
    expect(n.alive).toBe(true);
    expect((await n.client.call("health", {})).pid).toBe(pid);

    n.proxy.heal();
    const after = await c.waitFor(() => enqueue(n, [{}]), (ids) => ids.length === 1, 30_000, "an enqueue after heal");
    const jobs = await allComplete(c);
    expect(jobs.map((j) => j.id)).toContain(after[0]);
    expect(n.pid).toBe(pid);
    // Partitioned past the self-fence bound: the node fenced and registered again.
    expectFencedAndRejoined(n);
    const r = await c.check(jobs.map((j) => j.id), FENCED_RERUNS);
    expectClean(r);
  });

  it("cut: every connection reset; the daemon fences, reconnects at once and every job is done (a cut-off end may run again)", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const [running] = await enqueue(n, [{ ms: 1000, tickMs: 100 }]);
    await waitLine(c, running!, "tick");
    const queued = await enqueue(n, Array.from({ length: 200 }, () => ({ ms: 2 })));
    const pid = n.pid;
    const accepted = n.proxy.stats().accepted;

    n.proxy.cut();
    expect(n.proxy.stats().open).toBe(0);
    // New connections are made as needed: an enqueue goes through within seconds (the first
    // statement on a dead pooled connection may fail; a retry gets a fresh one).
    const after = await c.waitFor(
      () => enqueue(n, [{}]),
      (ids) => ids.length === 1,
      10_000,
      "an enqueue after the cut",
    );
    expect(n.proxy.stats().accepted).toBeGreaterThan(accepted);
    const jobs = await allComplete(c);
    expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining([running, ...queued, ...after]));
    expect(n.pid).toBe(pid);
    // The cut takes the control session too, and the node's lock with it: the node fences at
    // once and registers again; an attempt that had ended but whose finish the cut lost is
    // handed back and run again (at least once: a late end, not kept).
    expectFencedAndRejoined(n);
    expectClean(await c.check(jobs.map((j) => j.id), FENCED_RERUNS));
  });

  // Found by this suite (2026-12-03): the daemon exited (daemon.uncaught_exception "Connection
  // terminated unexpectedly") about 1 run in 3 when a session it had checked out of its pool
  // was ended between two statements; every checkout now listens (store/postgres/connect.ts).
  it("the server ends the daemon's sessions (pg_terminate_backend): it keeps serving and every job is done once", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const [running] = await enqueue(n, [{ ms: 1000, tickMs: 100 }]);
    await waitLine(c, running!, "tick");
    const backends = await c.backendsOf(0);
    expect(backends.length).toBeGreaterThan(0);
    await c.sql("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [backends]);
    await c.waitFor(() => enqueue(n, [{}]), (ids) => ids.length === 1, 10_000, "an enqueue after the sessions were ended");
    const jobs = await allComplete(c);
    // Its control session went too, and its node's lock with it: the node fenced at once and
    // registered again; the attempt it ran was handed back and run again, its work done twice
    // when it had ended before the fence reached it (a late end, not kept: about 1 run in 10).
    expectFencedAndRejoined(n);
    expectClean(await c.check(jobs.map((j) => j.id), FENCED_RERUNS));
    expect(n.alive).toBe(true);
    expect(n.log()).not.toContain("daemon.uncaught_exception");
  });

  it("kill -9 mid-job, then a restart on the same home: the job runs again (attempt 2) and is done once", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const [job] = await enqueue(n, [{ ms: 3000, tickMs: 100 }]);
    await waitLine(c, job!, "tick", 1);
    await c.killNode(0);
    const restarted = performance.now();
    await c.restartNode(0);
    const ready = performance.now();
    const second = await waitLine(c, job!, "start", 2);
    // How long the restarted daemon took to take the job up (printed for the record; the bench measures it properly).
    console.info(`[scale-out] kill -9, restart: daemon answered in ${Math.round(ready - restarted)} ms, job ${job} attempt 2 started ${Math.round(second.at - (performance.timeOrigin + ready))} ms later`);
    expect(second.at - (performance.timeOrigin + ready)).toBeLessThan(10_000);
    const [final] = await c.waitFor(() => c.jobs([job!]), ([j]) => j?.status === "complete", 30_000, "the job to complete");
    expect(final).toMatchObject({ status: "complete", attempts: 2 });
    const r = await c.check([job!]);
    expectClean(r);
    expect(r).toMatchObject({ starts: 2, ends: 1 });
    // (Seen once under load as "vanished": the attempt's pid not among the deaths, or its start after its death. The message says which.)
    expect(r.attempts.find((a) => a.attempt === 1)?.how, JSON.stringify({ attempts: r.attempts.map(({ segments: _, ...a }) => a), deaths: c.deaths })).toBe("died");
  });

  it("SIGSTOP for 3 s, then SIGCONT: past the self-fence bound the daemon fences, registers again and carries on; every job is done, an attempt cut off again, never two at once past the bound", { timeout: SCENARIO_MS }, async () => {
    const n = c.node(0);
    const [job] = await enqueue(n, [{ ms: 1500, tickMs: 100 }]);
    const others = await enqueue(n, Array.from({ length: 30 }, () => ({ ms: 20 })));
    await waitLine(c, job!, "tick", 1);
    const pid = n.pid;
    c.pauseNode(0);
    await sleep(3000); // the fault itself: a 3 s freeze (a long GC pause, a suspended VM)
    c.resumeNode(0);
    const jobs = await allComplete(c);
    expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining([job, ...others]));
    expect(n.pid).toBe(pid);
    expect((await n.client.call("health", {})).pid).toBe(pid);
    expectFencedAndRejoined(n);
    expectClean(await c.check(jobs.map((j) => j.id), FENCED_RERUNS));
  });
});

// ---------------------------------------------------------------------------------------------
// Several daemons on one database (SCALE-OUT.md §10, scenarios 1–5). Bounds: the issue's targets
// (resume ≤ 2 s after kill -9, ≤ 4 s after a partition) with room for a loaded 2-core machine;
// the measured figures are printed, and bench/scale-out.mjs measures them properly.

const KILL_BUDGET_MS = 5_000;
const PARTITION_BUDGET_MS = 8_000;
/** SCALE-OUT.md §10: no two attempts of one job overlap for longer than the self-fence bound (2 s). */
const SELF_FENCE_BOUND_MS = 2_000;

describe.skipIf(POSTGRES_SKIPPED !== null)("scale-out on PostgreSQL: several daemons on one database", () => {
  /** Why this build cannot run these, or null: found by the first cluster (no probe cluster of its own, to keep the file's time down). */
  let refused: string | null = null;
  let c: Cluster | undefined;
  afterEach(async () => {
    const crashed = c?.unexpectedExits() ?? [];
    await c?.teardown();
    c = undefined;
    expect(crashed.map((u) => `${u.node} exited (code ${u.code}, signal ${u.signal})`)).toEqual([]);
  });

  const cluster = async (n: number, skip: (note: string) => never) => {
    if (refused) skip(refused);
    try {
      c = await startCluster(n, { config: { concurrency: 4 } });
    } catch (err) {
      if (!(err instanceof NodeRefused)) throw err;
      refused = `this build runs one daemon per PostgreSQL database (a second one is refused: exit 10, daemon.database_taken); the multi-node scenarios need nodes (issue 14 item 2)`;
      console.warn(`[scale-out] several-daemon scenarios skipped: ${refused}`);
      skip(refused);
    }
    return c;
  };

  /** A long job, started: its id and the index of the node running it. */
  async function runningOnSomeNode(c: Cluster, payload: { [k: string]: Json }): Promise<{ job: number; node: number }> {
    const [job] = await enqueue(c.node(0), [payload]);
    await waitLine(c, job!, "tick", 1);
    const node = c.nodeOf(job!);
    expect(node).not.toBeNull();
    return { job: job!, node: node! };
  }

  it("1. shared claim: 3 daemons × concurrency 4 drain the queue; every job done once, attempt 1", { timeout: 300_000 }, async (ctx) => {
    const c = await cluster(3, ctx.skip);
    const total = Number(process.env.TEAMWORK_SCALE_JOBS ?? 3000);
    // Enqueued from one node while all three claim (a pause is per daemon until it restarts).
    const t0 = performance.now();
    const ids = await enqueue(c.node(0), Array.from({ length: total }, () => ({})));
    await c.waitFor(() => c.allJobs(), (jobs) => jobs.length === total && jobs.every((j) => j.status === "complete"), 240_000, `${total} jobs to complete`);
    const seconds = (performance.now() - t0) / 1000;
    const r = await c.check(ids);
    console.info(`[scale-out] 1. ${total} jobs on 3 daemons in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} jobs/s); by node ${JSON.stringify(r.byNode)}`);
    expectClean(r);
    expect(r).toMatchObject({ starts: total, ends: total });
    expect((await c.jobs(ids)).every((j) => j.attempts === 1)).toBe(true);
  });

  it("2. kill -9 of the node running a job: the job restarts on another node (attempt 2); 2 starts, 1 end", { timeout: SCENARIO_MS }, async (ctx) => {
    const c = await cluster(3, ctx.skip);
    const { job, node } = await runningOnSomeNode(c, { ms: 6000, tickMs: 100 });
    const killedAt = wallNow();
    await c.killNode(node);
    const second = await waitLine(c, job, "start", 2, 30_000);
    console.info(`[scale-out] 2. kill -9: job ${job} resumed on ${second.node} after ${Math.round(second.at - killedAt)} ms`);
    expect(second.node).not.toBe(c.node(node).name);
    expect(second.at - killedAt).toBeLessThan(KILL_BUDGET_MS);
    await c.waitFor(() => c.jobs([job]), ([j]) => j?.status === "complete", 30_000, "the job to complete");
    const r = await c.check([job]);
    expectClean(r);
    expect(r).toMatchObject({ starts: 2, ends: 1 });
  });

  it("3. partition (blackhole) of the node running a job: the job restarts elsewhere; after heal nothing is done twice, no overlap past the self-fence bound", { timeout: SCENARIO_MS }, async (ctx) => {
    const c = await cluster(3, ctx.skip);
    const { job, node } = await runningOnSomeNode(c, { ms: 8000, tickMs: 100 });
    const cutAt = wallNow();
    c.node(node).proxy.blackhole();
    const second = await waitLine(c, job, "start", 2, 30_000);
    console.info(`[scale-out] 3. blackhole: job ${job} resumed on ${second.node} after ${Math.round(second.at - cutAt)} ms`);
    expect(second.node).not.toBe(c.node(node).name);
    expect(second.at - cutAt).toBeLessThan(PARTITION_BUDGET_MS);
    // The partitioned node stopped its attempt by itself (self-fence): an abort line.
    await waitLine(c, job, "abort", 1, 10_000);
    c.node(node).proxy.heal();
    await c.waitFor(() => c.jobs([job]), ([j]) => j?.status === "complete", 30_000, "the job to complete");
    const r = await c.check([job], { overlapBoundMs: SELF_FENCE_BOUND_MS });
    expectClean(r);
    expect(c.node(node).alive).toBe(true);
  });

  it("4. a frozen node (SIGSTOP 8 s): its job restarts elsewhere; on SIGCONT it fences (a late end of its attempt is not kept); no overlap past the bound", { timeout: SCENARIO_MS }, async (ctx) => {
    const c = await cluster(3, ctx.skip);
    const { job, node } = await runningOnSomeNode(c, { ms: 8000, tickMs: 100 });
    const frozenAt = wallNow();
    c.pauseNode(node);
    const second = await waitLine(c, job, "start", 2, 30_000);
    console.info(`[scale-out] 4. SIGSTOP: job ${job} resumed on ${second.node} after ${Math.round(second.at - frozenAt)} ms`);
    expect(second.at - frozenAt).toBeLessThan(PARTITION_BUDGET_MS);
    const left = 8000 - (wallNow() - frozenAt);
    if (left > 0) await sleep(left); // the fault itself: frozen 8 s in all
    c.resumeNode(node);
    await c.waitFor(() => c.jobs([job]), ([j]) => j?.status === "complete", 30_000, "the job to complete");
    // Its worker thread resumed with it, its work's time up: it may end before the fence stops
    // it. That end is late: the queue keeps attempt 2's.
    const r = await c.check([job], FENCED_RERUNS);
    expectClean(r);
    expect(r.lateEnds.every((e) => e.attempt === 1 && e.node === c.node(node).name)).toBe(true);
    expect((await c.jobs([job]))[0]).toMatchObject({ status: "complete", attempts: 2 });
    await c.waitFor(async () => c.node(node).log(), (log) => log.includes(" node.rejoined "), 20_000, "the frozen node to register again");
  });

  it("5. the server ends the running node's sessions: the node re-registers; the job is done once", { timeout: SCENARIO_MS }, async (ctx) => {
    const c = await cluster(3, ctx.skip);
    const { job, node } = await runningOnSomeNode(c, { ms: 5000, tickMs: 100 });
    await c.sql("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [await c.backendsOf(node)]);
    await c.waitFor(() => c.jobs([job]), ([j]) => j?.status === "complete", 60_000, "the job to complete");
    const r = await c.check([job], { overlapBoundMs: SELF_FENCE_BOUND_MS });
    expectClean(r);
    expect(c.node(node).alive).toBe(true);
    // It serves again: a job enqueued through it completes.
    const [next] = await enqueue(c.node(node), [{}]);
    await c.waitFor(() => c.jobs([next!]), ([j]) => j?.status === "complete", 30_000, "a job enqueued through the node to complete");
  });
});
