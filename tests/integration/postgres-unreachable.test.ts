// A daemon whose PostgreSQL stops answering (a blackhole: a partition, a frozen server), on a
// real daemon reaching the real server through a fault proxy. Every command ends, before the
// CLI's own 10 s, with "database unreachable: <server>: <reason>" and exit 3 (not "the daemon
// is not answering"); a write it refused is not applied, half or whole; the daemon lives; and
// once the network heals, its engine and its node's heartbeats work again. The password in the
// URL never shows.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, type CliResult } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import { CLI_TIMEOUT_MS } from "../../src/commands/context.js";

const PASSWORD = "not-a-real-secret-5521";

describe.skipIf(POSTGRES_SKIPPED !== null)("a daemon whose PostgreSQL stops answering (blackhole)", () => {
  const database = `tw_unreach_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  let proxy: FaultProxy;
  let d: TestDaemon | undefined;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    proxy = await startFaultProxy();
  });
  afterAll(async () => {
    proxy?.heal();
    await d?.cleanup().catch(() => {});
    await proxy?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  /** A CLI command with the CLI's own timeout (no --timeout), timed. */
  const timedCli = async (args: string[]): Promise<CliResult & { ms: number }> => {
    const t0 = performance.now();
    const r = await runCli(args, { home: d!.home, timeoutMs: 60_000 });
    return { ...r, ms: Math.round(performance.now() - t0) };
  };
  const rows = async (sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: pgUrlFor(database) });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  };

  it("answers each command with 'database unreachable' and exit 3 before the CLI gives up, applies no refused write, and works again after heal", { timeout: 180_000 }, async () => {
    // The server trusts local connections: the password is accepted and unused, enough to show it never shows.
    const url = proxy.urlThrough(pgUrlFor(database)).replace("postgres@", `postgres:${PASSWORD}@`);
    d = await startDaemon({ env: { TEAMWORK_DATABASE_URL: url }, config: { concurrency: 2 } });
    const daemon = d;
    const where = `postgres@127.0.0.1:${proxy.port}/${database}`;
    // Pooled connections open and idle: the statements below go on connections that were fine.
    expect((await timedCli(["tasks", "add", "before"])).exitCode).toBe(0);
    const { job: warm } = await daemon.client.call("jobsEnqueue", { type: "noop" });
    await waitFor(async () => (await daemon.client.call("jobsGet", { id: warm.id })).job.status === "complete", { what: "a job before the blackhole" });

    proxy.blackhole();
    const read = await timedCli(["jobs", "list"]);
    const write = await timedCli(["tasks", "add", "during the blackhole"]);
    const enqueue = await timedCli(["enqueue", "noop"]);
    console.info(`[unreachable] blackhole: jobs list answered in ${read.ms} ms, tasks add in ${write.ms} ms, enqueue in ${enqueue.ms} ms (the CLI waits ${CLI_TIMEOUT_MS} ms)`);
    for (const r of [read, write, enqueue]) {
      expect(r.exitCode, r.stderr).toBe(3);
      expect(r.stderr).toContain(`database unreachable: ${where}: `);
      expect(r.stderr).not.toMatch(/is not answering/);
      expect(r.ms).toBeLessThan(CLI_TIMEOUT_MS);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
    // A task's write is one transaction whose COMMIT was never sent: nothing was changed, and it says so.
    expect(write.stderr).toMatch(/nothing was changed/);
    // Up, and the same process (/health needs no database).
    expect((await daemon.client.call("health", {})).pid).toBe(daemon.pid);

    proxy.heal();
    await waitFor(async () => (await timedCli(["tasks", "list", "--json"])).exitCode === 0, { timeoutMs: 30_000, what: "the daemon to reach its database again" });
    // Nothing refused was applied, even once the held bytes reached the server.
    expect((await rows("SELECT title FROM tasks ORDER BY id")).map((r: { title: string }) => r.title)).toEqual(["before"]);
    // An enqueue whose outcome it could not know is told so; one refused before its commit left nothing.
    const noops = (await rows("SELECT id FROM jobs WHERE type = 'noop' AND id <> $1", [warm.id])).length;
    if (/nothing was changed/.test(enqueue.stderr)) expect(noops).toBe(0);
    else expect(enqueue.stderr).toMatch(/may or may not have been made/);
    // The engine works: a job enqueued now runs to its end.
    const { job } = await waitFor(async () => daemon.client.call("jobsEnqueue", { type: "noop" }), { timeoutMs: 30_000, what: "an enqueue after heal" });
    await waitFor(async () => (await daemon.client.call("jobsGet", { id: job.id })).job.status === "complete", { timeoutMs: 30_000, what: "a job after heal to complete" });
    // The node keeps its lease again: its heartbeat is fresh, and stays so.
    await waitFor(
      async () => {
        const { nodes } = await daemon.client.call("nodesList", {});
        return nodes.length === 1 && nodes[0]!.pid === daemon.pid && nodes[0]!.heartbeatAgeMs < 2000;
      },
      { timeoutMs: 30_000, what: "the node's heartbeats to resume" },
    );
    const log = daemon.log();
    expect(log).not.toMatch(/daemon\.uncaught_exception|request\.failed/);
    expect(log).not.toContain(PASSWORD);
  });
});
