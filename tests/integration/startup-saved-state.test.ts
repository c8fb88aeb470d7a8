// The daemon answers only once the state it saved is loaded: a queue paused before a restart
// is paused in the very first answer of the restarted daemon, and a resume sent the moment its
// socket opens is kept (it was undone: the socket opened before the engine had read the saved
// pause, which then overwrote the resume). On PostgreSQL, where every read at start-up waits
// on the network, the window was wide; the test calls from the instant the socket exists.

import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import { Client } from "../../src/client/client.js";
import type { QueueState } from "../../src/protocol/types.js";

describe.skipIf(POSTGRES_SKIPPED !== null)("a restarted daemon answers only once its saved state is loaded (PostgreSQL)", () => {
  const database = `tw_startup_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  let d: TestDaemon | undefined;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    d = await startDaemon({ env: { TEAMWORK_DATABASE_URL: pgUrlFor(database) } });
  });
  afterAll(async () => {
    await d?.cleanup().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  /**
   * Restarts the daemon and calls `first` the moment its socket exists (retrying while it is
   * not yet accepting); returns what that first call answered, once the restart is complete.
   */
  async function restartAndCallAtOnce<T>(first: (c: Client) => Promise<T>): Promise<T> {
    const daemon = d!;
    await daemon.stop();
    const restarted = daemon.restart();
    const client = new Client({ socket: daemon.paths.socket, keepAlive: false, timeoutMs: 15_000 });
    try {
      await waitFor(() => existsSync(daemon.paths.socket), { intervalMs: 1, timeoutMs: 20_000, what: "the socket to appear" });
      const answer = await waitFor(async () => ({ v: await first(client) }), { intervalMs: 1, timeoutMs: 20_000, what: "the first answer" });
      await restarted;
      return answer.v;
    } finally {
      client.close();
    }
  }

  it("a paused queue is paused in the first answer after a restart", { timeout: 120_000 }, async () => {
    await d!.client.call("queuePause", {});
    for (let i = 0; i < 3; i++) {
      const first = await restartAndCallAtOnce((c) => c.call("queueGet", {}));
      expect(first.paused, `restart ${i + 1}: the first answer`).toEqual({ all: true, types: [] });
    }
  });

  it("a resume sent the moment the socket opens is kept, and saved", { timeout: 120_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      await d!.client.call("queuePause", {});
      const resumed: QueueState = await restartAndCallAtOnce((c) => c.call("queueResume", {}));
      expect(resumed.paused).toEqual({ all: false, types: [] });
      // Once started, still resumed: the saved pause did not come back over it.
      expect((await d!.client.call("queueGet", {})).paused, `restart ${i + 1}: after start`).toEqual({ all: false, types: [] });
      // And it was saved: the next run starts resumed.
      const next = await restartAndCallAtOnce((c) => c.call("queueGet", {}));
      expect(next.paused, `restart ${i + 1}: the next run`).toEqual({ all: false, types: [] });
    }
  });
});
