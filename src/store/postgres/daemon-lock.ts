// One daemon per database, for now: a session-level advisory lock held on a connection of its
// own for the daemon's life. Without nodes and leases (SCALE-OUT.md §9) a second daemon would
// take every job the first is running for abandoned at its start; it is refused instead, with
// who holds the database. The lock goes with the session: a daemon killed with -9 frees it as
// soon as the server sees its connection close.

import pg from "pg";
import { StoreError } from "../errors.js";
import { CONNECT_TIMEOUT_MS, type Target } from "./connect.js";
import { pgFailure } from "./errors.js";
import { DAEMON_LOCK, LOCK_NAMESPACE } from "./migrate.js";

/** The application name a daemon's lock connection carries: how a refused daemon names the holder. */
export function daemonLockName(who: { host: string; pid: number }): string {
  // application_name is cut at 63 bytes by the server; the pid goes first so it survives.
  return `teamwork daemon pid ${who.pid} on ${who.host}`.slice(0, 63);
}

export async function holdDaemonLock(url: string, target: Target, who: { host: string; pid: number; owner: string }): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: daemonLockName(who) });
  // A lost connection (server restart, network) is reported here; the lock is gone with it.
  // The daemon's writes stay fenced on its attempts, so what another daemon then does with
  // its jobs cannot be overwritten by it.
  client.on("error", () => {});
  try {
    await client.connect();
    const got = await client.query<{ got: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS got", [LOCK_NAMESPACE, DAEMON_LOCK]);
    if (!got.rows[0]!.got) {
      const holder = await client.query<{ name: string; addr: string | null; since: Date }>(
        `SELECT a.application_name AS name, host(a.client_addr) AS addr, a.backend_start AS since
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 AND l.granted`,
        [LOCK_NAMESPACE, DAEMON_LOCK],
      );
      const h = holder.rows[0];
      const named = h ? `${h.name || "an unnamed session"}${h.addr ? ` (from ${h.addr})` : ""}, since ${h.since.toISOString()}` : "another session";
      throw new StoreError("busy", `another teamwork daemon already serves the database ${target.where}: ${named}; this version runs one daemon per PostgreSQL database`);
    }
  } catch (err) {
    await client.end().catch(() => {});
    throw pgFailure(err, target);
  }
  return {
    async release() {
      await client.query("SELECT pg_advisory_unlock($1, $2)", [LOCK_NAMESPACE, DAEMON_LOCK]).catch(() => {});
      await client.end().catch(() => {});
    },
  };
}
