// A claim whose answer is lost, on PostgreSQL (issue 14, "no job lost"): the server ran the
// claim and made a job running for this daemon, but the answer never came back (the one data
// connection went silent; the node's control connection, its lease and its heartbeat stay
// fine). Nobody else would take the job back: rescue acts on dead nodes, and this one is alive.
// The daemon asks the store what runs for it (src/queue/reconcile.ts) and gives back the job
// it never received, its attempt not counted; then it claims it again and runs it once.
//
// The fault is real: a deferred trigger keeps the claim's COMMIT busy on the server for 2 s
// (once), long enough to blackhole that one connection in the daemon's fault proxy while the
// server commits; the daemon's client gives up on the answer after 4 s (ANSWER_TIMEOUT_MS).
//
// Run: TEAMWORK_TEST_PG=1 npx vitest run tests/integration/claim-answer-lost.test.ts

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { POSTGRES_SKIPPED } from "../store/factory.js";

describe.skipIf(POSTGRES_SKIPPED !== null)("a claim whose answer is lost (PostgreSQL)", () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster(1, { config: { concurrency: 1 }, clientTimeoutMs: 30_000 });
  }, 60_000);
  afterAll(async () => {
    const crashed = c?.unexpectedExits() ?? [];
    await c?.teardown();
    expect(crashed.map((u) => `${u.node} exited (code ${u.code}, signal ${u.signal})`)).toEqual([]);
  });

  it("the job it took for this live daemon is given back uncounted, claimed again and run once", { timeout: 90_000 }, async () => {
    const n = c.node(0);
    await c.sql(`CREATE TABLE slow_claim (armed boolean NOT NULL)`);
    await c.sql(`INSERT INTO slow_claim VALUES (true)`);
    await c.sql(`CREATE FUNCTION slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status = 'running' AND OLD.status = 'pending' AND (SELECT armed FROM slow_claim) THEN
          UPDATE slow_claim SET armed = false;
          PERFORM pg_sleep(2);
        END IF;
        RETURN NULL;
      END $$`);
    await c.sql(`CREATE CONSTRAINT TRIGGER slow_claim AFTER UPDATE ON jobs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_claim()`);

    const enqueued = n.client.call("jobsEnqueue", { type: "ledger", payload: { ms: 50 } });
    // The claim's session, busy with its COMMIT: cut its connection's answers, and only those.
    const [row] = await c.waitFor(
      () => c.sql<{ client_port: number }>(`SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '%jobs_claim(%' AND pid <> pg_backend_pid()`),
      (rows) => rows.length === 1,
      10_000,
      "the claim to be committing on the server",
    );
    const conn = n.proxy.connections().find((x) => x.serverPort === row!.client_port);
    expect(conn, "the claim's connection goes through the node's proxy").toBeDefined();
    conn!.blackhole();

    // The job is stored and answered as such (the claim's failure is the tick's own business).
    // The server committed the claim: the job ran for the live node, which never got it, until
    // the node gave it back (the log below says so, naming it).
    const { job } = await enqueued;

    const [final] = await c.waitFor(() => c.jobs([job.id]), ([j]) => j?.status === "complete", 30_000, "the job to complete");
    expect(final).toMatchObject({ status: "complete", attempts: 1 });
    const log = n.log();
    expect(log).toMatch(/store\.claim_failed/);
    expect(log).toMatch(new RegExp(`jobs\\.claim_reconciled jobs=1 ids=${job.id}\\b`));
    // Started once, as attempt 1: the attempt the lost claim counted was given back.
    const starts = c.ledger().filter((l) => l.job === job.id && l.event === "start");
    expect(starts.map((l) => l.attempt)).toEqual([1]);
    expect((await c.sql<{ armed: boolean }>(`SELECT armed FROM slow_claim`))[0]!.armed).toBe(false);
  });
});
