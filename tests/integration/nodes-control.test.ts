// Nodes telling each other (issue 14 items 3 and 5; SCALE-OUT.md §9.4, §10 scenarios 7, 8, 9,
// 17): real daemons on one PostgreSQL database, each through its own fault proxy, running the
// ledger job type (tests/fixtures/jobs/ledger.mjs), with LISTEN/NOTIFY on (the default) and off
// (databaseNotify: false: the poll and the heartbeat alone).
//
// - Wake-ups: a job enqueued through a node whose slots are all busy starts on an idle node,
//   woken by NOTIFY well under the claim poll (1 s); without NOTIFY within poll + claim.
// - 7: a cancel through one node of a job running on another that ignores its AbortSignal:
//   the owner hears it (NOTIFY: at once; without: with its next heartbeat), its worker is
//   terminated past the 3 s grace; a job that returns within the grace keeps its result and
//   stays cancelled. The CLI names the node that ran it.
// - 8: a cancel, then the owner killed (-9): the job ends cancelled, never runs again.
// - 9: a cancel, then the owner frozen (SIGSTOP) past deadline + lease: another node ends the
//   job cancelled (rescue, which sees the frozen node first, or the reaper); once resumed, the
//   frozen node's writes change nothing.
//
// The figures (wake latency, cancel delivery) are printed: `[control]` lines.
//
// Run: TEAMWORK_TEST_PG=1 npx vitest run tests/integration/nodes-control.test.ts

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pidAlive, startCluster, type Cluster, type ClusterNode } from "../helpers/cluster.js";
import type { LedgerEntry } from "../helpers/ledger.js";
import { POSTGRES_SKIPPED } from "../store/factory.js";
import { CLAIM_POLL_MS, HEARTBEAT_MS, LEASE_MS } from "../../src/queue/node-lease.js";
import type { Json } from "../../src/protocol/types.js";

const GRACE_MS = 3000;
const TEST_MS = 120_000;
const wallNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => Math.round(x)).join(", ");

async function enqueueOne(node: ClusterNode, payload: { [k: string]: Json }): Promise<number> {
  return (await node.client.call("jobsEnqueue", { type: "ledger", payload })).job.id;
}

function lineOf(c: Cluster, job: number, event: LedgerEntry["event"]): LedgerEntry | undefined {
  return c.ledger().find((l) => l.job === job && l.event === event);
}

async function waitLine(c: Cluster, job: number, event: LedgerEntry["event"], timeoutMs = 20_000): Promise<LedgerEntry> {
  return (await c.waitFor(() => lineOf(c, job, event), (l) => l !== undefined, timeoutMs, `job ${job} to write "${event}" in the ledger`))!;
}

async function statusOf(c: Cluster, id: number) {
  return (await c.healthyNode().client.call("jobsGet", { id })).job;
}

for (const notify of [true, false]) {
  describe.skipIf(POSTGRES_SKIPPED !== null)(`nodes telling each other, NOTIFY ${notify ? "on" : "off"}`, () => {
    let c: Cluster;

    beforeAll(async () => {
      // One slot each, so that "busy" is one running job; the ledger type in a child process
      // (scenario 7 looks at its pid); the cancel grace 3 s.
      c = await startCluster(2, { config: { concurrency: 1, cancelGrace: "3s", jobIsolation: { ledger: "process" }, databaseNotify: notify } });
    }, 60_000);
    afterAll(async () => {
      const crashed = c?.unexpectedExits() ?? [];
      await c?.teardown();
      expect(crashed.map((u) => `${u.node} exited (code ${u.code}, signal ${u.signal})`)).toEqual([]);
    });

    it(`a job enqueued through a busy node starts on the idle one ${notify ? "well under the claim poll (NOTIFY)" : "within poll + claim (no NOTIFY)"}`, { timeout: TEST_MS }, async () => {
      // Whichever node takes the long job is the busy one; the jobs enqueued through it must
      // start on the other.
      const long = await enqueueOne(c.node(0), { ms: 60_000, tickMs: 250 });
      await waitLine(c, long, "start");
      const busy = c.node(c.nodeOf(long)!);
      const idle = c.node(1 - busy.index);
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        // A random wait between them (up to a poll interval): each lands at a random phase of
        // the idle node's poll, so the figures without NOTIFY are the poll's spread.
        await sleep(Math.random() * CLAIM_POLL_MS);
        const t0 = wallNow();
        const id = await enqueueOne(busy, { ms: 20 });
        const start = await waitLine(c, id, "start", 15_000);
        expect(start.node).toBe(idle.name);
        latencies.push(start.at - t0);
        await waitLine(c, id, "end", 15_000);
      }
      console.log(`[control] enqueue through the busy node → start on the idle one, NOTIFY ${notify ? "on" : "off"}: median ${Math.round(median(latencies))} ms, max ${Math.round(Math.max(...latencies))} ms (${fmt(latencies)})`);
      if (notify) expect(median(latencies)).toBeLessThan(CLAIM_POLL_MS / 2);
      // Poll + claim, with room for a loaded machine (the child process's start is in it too).
      expect(Math.max(...latencies)).toBeLessThan(CLAIM_POLL_MS + 2_500);
      await c.healthyNode().client.call("jobsCancel", { id: long, wait: true });
    });

    it("scenario 7: a cancel through one node stops the job on the other: the owner hears it, terminates the worker past the grace, a result returned within the grace is kept as cancelled", { timeout: TEST_MS }, async () => {
      // J1 ignores its signal for ever: its child process is killed at the grace. J2 ignores
      // it but returns 2 s after the cancel, within the grace.
      const j1 = await enqueueOne(c.node(0), { ms: 60_000, ignoreAbort: true, tickMs: 100 });
      const s1 = await waitLine(c, j1, "start");
      const owner = c.node(c.nodeOf(j1)!);
      const other = c.node(1 - owner.index);
      const ownerNode = (await other.client.call("nodesList", {})).nodes.find((n) => n.pid === owner.pid)!;

      const t0 = wallNow();
      const cli = await other.cli(["jobs", "cancel", String(j1)], { timeoutMs: 60_000 });
      const cliMs = wallNow() - t0;
      expect(cli.exitCode, cli.stderr).toBe(0);
      expect(cli.stdout).toContain(`job ${j1} (ledger): cancel requested on node ${ownerNode.id} (host ${ownerNode.host}, pid ${owner.pid}), which runs it`);
      expect(cli.stdout).toContain(`job ${j1} (ledger): Cancelled by user`);
      const signal = await waitLine(c, j1, "signal");
      const deliveryMs = signal.at - t0;
      const job1 = await statusOf(c, j1);
      expect(job1).toMatchObject({ status: "cancelled", attempts: 1, error: "cancelled by user" });
      // Its child was terminated past the grace; it never wrote an end, and no attempt ran again.
      await c.waitFor(() => pidAlive(s1.pid), (alive) => !alive, 10_000, `the worker process ${s1.pid} gone`);
      expect(lineOf(c, j1, "end")).toBeUndefined();
      expect(c.ledger().filter((l) => l.job === j1 && l.event === "start")).toHaveLength(1);
      // Told at once with NOTIFY; without, by a heartbeat (every second) — the CLI includes
      // its own start (a process) in t0.
      expect(deliveryMs).toBeLessThan(notify ? 1_500 : HEARTBEAT_MS + 2_000);
      expect(owner.log()).toMatch(new RegExp(` job\\.cancel_heard job=${j1} .*via=${notify ? "notify" : "heartbeat"}`));
      // The CLI waited for the stop: the grace, at least.
      expect(cliMs).toBeGreaterThanOrEqual(GRACE_MS - 200);

      // --no-wait answers at once, naming the node; a result within the grace is kept.
      const j2 = await enqueueOne(other, { ms: 6_000, ignoreAbort: true, tickMs: 100 });
      const s2 = await waitLine(c, j2, "start");
      const owner2 = c.node(c.nodeOf(j2)!);
      const asker = c.node(1 - owner2.index);
      await c.waitFor(() => wallNow(), (t) => t >= s2.at + 4_000, 20_000, "4 s into J2");
      const t2 = wallNow();
      const r2 = await asker.client.call("jobsCancel", { id: j2, wait: false });
      expect(r2.job.status).toBe("running");
      expect(r2.runsOn).toMatchObject({ host: expect.any(String), pid: owner2.pid });
      const signal2 = await waitLine(c, j2, "signal");
      await waitLine(c, j2, "end");
      const job2 = await c.waitFor(() => statusOf(c, j2), (j) => j.status !== "running", 15_000, `job ${j2} stopped`);
      expect(job2).toMatchObject({ status: "cancelled", attempts: 1, result: { node: owner2.name, attempt: 1 } });

      // Delivery over a few more cancels through the API (jobs that stop on their signal): from
      // the request to the handler seeing its signal on the other node.
      const delivery: number[] = [Math.round(signal2.at - t2)];
      for (let i = 0; i < 6; i++) {
        const j = await enqueueOne(c.node(i % 2), { ms: 60_000, tickMs: 250 });
        await waitLine(c, j, "start");
        const runner = c.node(c.nodeOf(j)!);
        await sleep(Math.random() * 300);
        const t = wallNow();
        await c.node(1 - runner.index).client.call("jobsCancel", { id: j, wait: false });
        delivery.push((await waitLine(c, j, "abort")).at - t);
        await c.waitFor(() => statusOf(c, j), (x) => x.status === "cancelled", 15_000, `job ${j} cancelled`);
      }
      if (notify) expect(median(delivery)).toBeLessThan(HEARTBEAT_MS / 2);
      expect(Math.max(...delivery)).toBeLessThan(HEARTBEAT_MS + 1_500);
      console.log(
        `[control] cancel delivery across nodes (request → the handler's signal on the other node), NOTIFY ${notify ? "on" : "off"}: median ${Math.round(median(delivery))} ms, max ${Math.round(Math.max(...delivery))} ms (${fmt(delivery)}); through the CLI ${Math.round(deliveryMs)} ms (its process start included), which answered after ${Math.round(cliMs)} ms (grace ${GRACE_MS} ms)`,
      );
    });

    if (!notify) return;

    it("scenario 18: only a node's control connection goes half-open (LISTEN deaf, its pool fine): the heartbeat on that socket fails, the node fences, rejoins and LISTENs again", { timeout: TEST_MS }, async () => {
      const long = await enqueueOne(c.node(0), { ms: 60_000, tickMs: 250 });
      await waitLine(c, long, "start");
      const busy = c.node(c.nodeOf(long)!);
      const idle = c.node(1 - busy.index);
      const [row] = await c.sql<{ client_port: number }>("SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2", [c.database, `teamwork node pid ${idle.pid} %`]);
      const control = idle.proxy.connections().find((x) => x.serverPort === row!.client_port)!;
      expect(control).toBeDefined();
      const fencesBefore = idle.log().split(" node.fenced ").length;
      const rejoinsBefore = idle.log().split(" node.rejoined ").length;
      const t0 = wallNow();
      control.blackhole();
      // Its pool still works: a job enqueued meanwhile starts on it by the poll at the latest.
      const during = await enqueueOne(busy, { ms: 20 });
      const duringStart = await waitLine(c, during, "start", 15_000);
      expect(duringStart.node).toBe(idle.name);
      await c.waitFor(() => idle.log().split(" node.fenced ").length, (k) => k > fencesBefore, 15_000, "the idle node fenced");
      const fencedMs = wallNow() - t0;
      await c.waitFor(() => idle.log().split(" node.rejoined ").length, (k) => k > rejoinsBefore, 20_000, "the idle node rejoined");
      control.heal();
      // LISTENing again: wake-ups reach it at once, not at the poll.
      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        await sleep(150 + Math.random() * 200);
        const t = wallNow();
        const id = await enqueueOne(busy, { ms: 20 });
        const start = await waitLine(c, id, "start", 15_000);
        expect(start.node).toBe(idle.name);
        latencies.push(start.at - t);
        await waitLine(c, id, "end", 15_000);
      }
      expect(median(latencies)).toBeLessThan(CLAIM_POLL_MS / 2);
      console.log(`[control] scenario 18 (control socket half-open): fenced ${Math.round(fencedMs)} ms after the blackhole, a job enqueued meanwhile started on it after ${Math.round(duringStart.at - t0)} ms (poll); after rejoining, enqueue → start median ${Math.round(median(latencies))} ms (${fmt(latencies)})`);
      await c.healthyNode().client.call("jobsCancel", { id: long, wait: true });
    });

    it("scenario 9: the owner frozen past deadline + lease after a cancel: another node ends the job cancelled; the frozen node's late writes change nothing", { timeout: TEST_MS }, async () => {
      const j = await enqueueOne(c.node(0), { ms: 60_000, ignoreAbort: true, tickMs: 100 });
      await waitLine(c, j, "start");
      const owner = c.node(c.nodeOf(j)!);
      const other = c.node(1 - owner.index);
      c.pauseNode(owner.index);
      const t0 = wallNow();
      const r = await other.client.call("jobsCancel", { id: j, wait: false });
      expect(r.job.status).toBe("running");
      // Ended by another node while the owner is still frozen: cancelled, never pending.
      const seen = new Set<string>();
      const ended = await c.waitFor(
        async () => {
          const job = await statusOf(c, j);
          seen.add(job.status);
          return job;
        },
        (job) => job.status !== "running",
        GRACE_MS + 2 * LEASE_MS + 10_000,
        `job ${j} ended while its node is frozen`,
      );
      const endedMs = wallNow() - t0;
      expect(ended).toMatchObject({ status: "cancelled", attempts: 1 });
      expect(seen.has("pending")).toBe(false);
      // Frozen past deadline + lease, then resumed: it fences, rejoins, and writes nothing that sticks.
      await c.waitFor(() => wallNow(), (t) => t >= t0 + GRACE_MS + LEASE_MS + 1_000, 30_000, "past deadline + lease");
      c.resumeNode(owner.index);
      await c.waitFor(() => owner.log(), (log) => log.includes(" node.rejoined "), 30_000, "the frozen node rejoined");
      await sleep(1_500);
      expect(await statusOf(c, j)).toMatchObject({ status: "cancelled", attempts: 1 });
      expect(c.ledger().filter((l) => l.job === j && l.event === "start")).toHaveLength(1);
      console.log(`[control] scenario 9 (owner frozen after the cancel): ended cancelled by another node ${Math.round(endedMs)} ms after the request`);
    });

    it("scenario 8: a cancel, then the owner killed: the job ends cancelled, never runs again", { timeout: TEST_MS }, async () => {
      const j = await enqueueOne(c.node(0), { ms: 60_000, ignoreAbort: true, tickMs: 100 });
      await waitLine(c, j, "start");
      const owner = c.node(c.nodeOf(j)!);
      const other = c.node(1 - owner.index);
      const r = await other.client.call("jobsCancel", { id: j, wait: false });
      expect(r.job.status).toBe("running");
      await c.killNode(owner.index);
      const t0 = wallNow();
      const ended = await c.waitFor(() => statusOf(c, j), (job) => job.status !== "running", 20_000, `job ${j} ended after its node died`);
      expect(ended).toMatchObject({ status: "cancelled", attempts: 1 });
      // Nothing runs it again: the other node is idle and claims nothing.
      await sleep(CLAIM_POLL_MS * 2);
      expect(c.ledger().filter((l) => l.job === j && l.event === "start")).toHaveLength(1);
      expect(await statusOf(c, j)).toMatchObject({ status: "cancelled", attempts: 1 });
      console.log(`[control] scenario 8 (owner killed after the cancel): ended cancelled ${Math.round(wallNow() - t0)} ms after the kill`);
    });
  });
}
