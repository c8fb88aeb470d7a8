// A daemon on PostgreSQL (config `database`): it runs jobs and the board there, and says so in
// `daemon status`. A second daemon on the same database joins it as another node (more in
// postgres-nodes.test.ts): it leaves the first one's running jobs alone, and takes them over
// when the first dies.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, tempHome, writeConfig, FIXTURE_JOBS, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import { connect } from "../../src/client/connect.js";
import { isRunning } from "../../src/client/autostart.js";
import { resolvePaths } from "../../src/config/paths.js";

const PASSWORD = "not-a-real-secret-9137";

describe.skipIf(POSTGRES_SKIPPED !== null)("a daemon on PostgreSQL", () => {
  const database = `tw_daemon_${randomBytes(5).toString("hex")}`;
  // The server trusts every local connection, so a password in the URL is accepted and unused:
  // enough to show it never reaches output or logs.
  const url = pgUrlFor(database).replace("postgres@", `postgres:${PASSWORD}@`);
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
  });
  afterAll(async () => {
    for (const d of daemons) await d.cleanup().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const start = async () => {
    const d = await startDaemon({ env: { TEAMWORK_DATABASE_URL: url } });
    daemons.push(d);
    return d;
  };

  it("runs jobs and keeps the board there; daemon status names the store and the node, never the password", async () => {
    const d = await start();
    const { job } = await d.client.call("jobsEnqueue", { type: "noop" });
    const done = await waitFor(async () => {
      const j = (await d.client.call("jobsGet", { id: job.id })).job;
      return j.status === "complete" ? j : null;
    });
    expect(done.attempts).toBe(1);
    // The rows are in PostgreSQL, not in a file under the home.
    const check = new pg.Client({ connectionString: pgUrlFor(database) });
    await check.connect();
    try {
      expect((await check.query("SELECT status FROM jobs WHERE id = $1", [job.id])).rows).toEqual([{ status: "complete" }]);
    } finally {
      await check.end();
    }

    const status = await runCli(["daemon", "status"], { home: d.home });
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toContain(`database:    PostgreSQL postgres://postgres@127.0.0.1:5432/${database}`);
    expect(status.stdout).toMatch(/node: {8}[0-9a-f-]{36}/);
    const json = await runCli(["daemon", "status", "--json"], { home: d.home });
    expect(JSON.parse(json.stdout)).toMatchObject({ store: "postgres", database: `postgres://postgres@127.0.0.1:5432/${database}` });
    for (const text of [status.stdout, status.stderr, json.stdout, d.log()]) expect(text).not.toContain(PASSWORD);
  });

  it("a second daemon on the same database joins as a node, leaves the first one's running job alone, and takes it over once the first is killed", async () => {
    const first = daemons[0]!;
    // A job running on the first when the second starts, and when the first dies.
    const { job } = await first.client.call("jobsEnqueue", { type: "until-cancelled" });
    await waitFor(async () => (await first.client.call("jobsGet", { id: job.id })).job.status === "running");

    const next = await start();
    const nodes = await next.client.call("nodesList", {});
    expect(nodes.nodes.map((n) => n.pid).sort()).toEqual([first.pid, next.pid].sort());
    for (const text of [next.log(), JSON.stringify(nodes)]) expect(text).not.toContain(PASSWORD);
    // Its start rescued nothing of a live node.
    expect((await first.client.call("jobsGet", { id: job.id })).job).toMatchObject({ status: "running", attempts: 1 });

    // kill -9: the server ends the first one's sessions, its lock goes with them; the second
    // finds the node dead and hands the interrupted attempt back to the queue, where it runs again.
    await first.kill9();
    const again = await waitFor(
      async () => {
        const j = (await next.client.call("jobsGet", { id: job.id })).job;
        return j.status === "running" && j.attempts === 2 ? j : null;
      },
      { timeoutMs: 20_000, what: "the job running again on the second daemon" },
    );
    expect(again.attempts).toBe(2);
    await next.client.call("jobsCancel", { id: job.id });
    await waitFor(async () => (await next.client.call("jobsGet", { id: job.id })).job.status === "cancelled");
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("connect({ database, autostart }) from an application", () => {
  it("starts the daemon on that database; the job it queues runs there", async () => {
    const database = `tw_connect_${randomBytes(5).toString("hex")}`;
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const home = tempHome();
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });
    const tw = await connect({ home, autostart: true, database: pgUrlFor(database) });
    try {
      expect(await tw.daemon.status()).toMatchObject({ store: "postgres", database: `postgres://postgres@127.0.0.1:5432/${database}` });
      const { job } = await tw.jobs.enqueue("noop", {});
      await tw.jobs.wait(job.id, { timeout: 10_000 });
      expect((await admin.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [database])).rows[0].n).toBe(1);
      const check = new pg.Client({ connectionString: pgUrlFor(database) });
      await check.connect();
      expect((await check.query("SELECT status FROM jobs WHERE id = $1", [job.id])).rows).toEqual([{ status: "complete" }]);
      await check.end();
    } finally {
      await tw.daemon.stop().catch(() => {});
      await waitFor(async () => !(await isRunning(resolvePaths({ home }))), { what: "the daemon to stop" });
      tw.close();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe("a daemon whose PostgreSQL cannot be reached", () => {
  it("does not start; the command says where and why, with exit 3, without the password and without hanging", async () => {
    const home = tempHome();
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    const r = await runCli(["tasks", "list"], { home, env: { TEAMWORK_DATABASE_URL: `postgres://team:${PASSWORD}@127.0.0.1:9/teamwork` }, timeoutMs: 20_000 });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("database unreachable: team@127.0.0.1:9/teamwork: connection refused");
    expect(r.stderr + r.stdout).not.toContain(PASSWORD);
  });
});
