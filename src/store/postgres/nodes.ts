// Nodes on PostgreSQL (migration 003, SCALE-OUT.md §9): each daemon run registers a node on a
// control connection of its own, a pg.Client outside the pool, which
// - holds the node's session advisory lock (LOCK_NAMESPACE, lock_key), taken in the same
//   statement that inserts its row, so that the row never exists without the lock having been
//   had;
// - renews the node's lease on the database's clock (heartbeat);
// - is closed by the server once idle for IDLE_SESSION_TIMEOUT (no heartbeat: a frozen or cut
//   off node), which releases the lock: with TCP keepalive, that is how the others learn a node
//   is gone without waiting for its lease;
// - is reported lost (NodeSessionEvents.lost) on any error: the lock is gone with it, so the
//   node must fence itself at once.
// - LISTENs on tw_jobs and tw_control (wakeups.ts): another daemon made jobs claimable, or
//   asked to cancel a job this node runs; the session reports them as events. The heartbeat
//   goes over the same socket every second, so a LISTEN that silently stopped hearing (a
//   half-open connection: SCALE-OUT.md scenario 18) is a heartbeat that fails too, and the
//   node fences and registers again, LISTENing anew; the heartbeat also says whether the
//   session still LISTENs (pg_listening_channels(), the pg-boss check, at no extra round
//   trip), and returns the node's jobs whose cancel was requested, so a lost NOTIFY costs at
//   most a heartbeat period.
//
// Rescue is leaderless: every node runs it (one statement); FOR UPDATE SKIP LOCKED on the dead
// node's row means two rescuers never handle the same node, and the job update re-checks
// `status = 'running' AND owner` under its row lock, so a job finished meanwhile is left alone.

import { EventEmitter } from "node:events";
import pg from "pg";
import { conflict } from "../../lib/errors.js";
import type { CancelNotice, Heartbeat, NodeIdentity, NodeRecord, NodeSession, NodeSessionEvents, NodeStore } from "../types.js";
import { CONNECT_TIMEOUT_MS, TYPES, type Target } from "./connect.js";
import { pgFailure } from "./errors.js";
import { RESCUED } from "./jobs.js";
import { LOCK_NAMESPACE } from "./migrate.js";
import { CONTROL_CHANNEL, JOBS_CHANNEL, type Wakeups } from "./wakeups.js";

/**
 * The server ends a control session idle this long (no heartbeat): the node's lock goes with
 * it. Longer than a heartbeat's period (1 s) with room for a slow one; set on the control
 * session only (never on pooled connections, which may be idle for long).
 */
export const IDLE_SESSION_TIMEOUT = "3s";
/** A heartbeat or registration the server has not answered in this long is cancelled. */
const CONTROL_STATEMENT_TIMEOUT = "1s";
/** A registration not answered in this long, once connected, is given up (and tried again by the node). */
const REGISTER_TIMEOUT_MS = 5000;
/** How many lock keys registration tries when a key is taken (the sequence cycles). */
const REGISTER_TRIES = 5;

/** What the control session's application_name says: who holds a node's lock, in pg_stat_activity. */
export function nodeSessionName(who: NodeIdentity): string {
  // application_name is cut at 63 bytes by the server; the pid goes first so it survives.
  return `teamwork node pid ${who.pid} on ${who.host}`.slice(0, 63);
}

// The lock and the row together: the row is inserted only if the lock was had.
const REGISTER = `WITH k AS (SELECT nextval('nodes_lock_key_seq')::int AS key)
  INSERT INTO nodes (id, lock_key, host, pid, lease_until)
  SELECT $1, k.key, $2, $3, now() + make_interval(secs => $4 / 1000.0)
    FROM k WHERE pg_try_advisory_lock($5, k.key)
  RETURNING lock_key, lease_until, now() AS db_now`;

// The lease is renewed only while it holds: once lapsed, the node may already have been found
// dead and its jobs handed out; it must fence and register anew. A stopping node still renews.
// It also returns the node's running jobs whose cancel was requested (through the partial
// index of migration 006: a look-up in a handful of rows), and whether the session LISTENs.
const HEARTBEAT = `WITH hb AS (
    UPDATE nodes SET heartbeat_at = now(), lease_until = now() + make_interval(secs => $2 / 1000.0)
     WHERE id = $1 AND lease_until > now()
    RETURNING lease_until)
  SELECT (SELECT lease_until FROM hb) AS lease_until, now() AS db_now,
         coalesce((SELECT json_agg(json_build_object('id', j.id, 'attempt', j.attempts,
                             'graceLeftMs', greatest(0, extract(epoch FROM j.cancel_deadline - now()) * 1000)::float8) ORDER BY j.id)
                     FROM jobs j WHERE j.status = 'running' AND j.cancel_deadline IS NOT NULL AND j.owner = $1), '[]') AS cancels,
         (SELECT count(*) FROM pg_listening_channels() AS l (channel) WHERE l.channel IN ('${JOBS_CHANNEL}', '${CONTROL_CHANNEL}')) = 2 AS listening`;

// Dead: lease lapsed, or silent for $2 ms with its lock gone (its session ended: the process
// died, or the server closed it idle). Orphans: running jobs of an owner with no node row (left
// by a daemon of a version before nodes): gone too. A rescued job whose cancel was requested
// ends cancelled (RESCUED).
//
// The reaper, in the same statement: a job of a live node still running $4 ms (the lease) past
// its cancel deadline is ended cancelled: its node did not stop it (stuck, or a build that does
// not deliver cancels); if that node ever writes for the attempt again, the fence refuses it.
// SKIP LOCKED: two reapers never wait for each other; the jobs of the dead nodes this statement
// rescues are left to rescue (one statement must not update a row twice).
//
// And lapsed event watches (migration 008) go: a dead daemon's watch must not keep the event
// triggers writing once its lease is over, whether anyone else watches or not (SKIP LOCKED:
// a rescue never waits for another's sweep, nor for a late renewal).
const RESCUE_DEAD = `WITH dead AS (
    SELECT n.id FROM nodes n
     WHERE n.lease_until < now()
        OR (n.heartbeat_at < now() - make_interval(secs => $2 / 1000.0)
            AND NOT EXISTS (SELECT 1 FROM pg_locks l
                             WHERE l.locktype = 'advisory'
                               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                               AND l.classid = $3 AND l.objid = n.lock_key AND l.objsubid = 2 AND l.granted))
     FOR UPDATE SKIP LOCKED),
  rescued AS (
    UPDATE jobs j SET ${RESCUED("$1")}
     WHERE j.status = 'running'
       AND (j.owner IN (SELECT id FROM dead) OR j.owner IS NULL OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.owner))
    RETURNING j.id, j.status),
  overdue AS (
    SELECT j.id FROM jobs j
     WHERE j.status = 'running' AND j.cancel_deadline < now() - make_interval(secs => $4 / 1000.0)
       AND j.owner NOT IN (SELECT id FROM dead) AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.owner)
     FOR UPDATE OF j SKIP LOCKED),
  reaped AS (
    UPDATE jobs j SET status = 'cancelled', slot = NULL, owner = NULL, finished_at = to_timestamp($1::float8 / 1000), error = 'cancelled by user',
           errors = json_append(j.errors, json_build_object('attempt', j.attempts, 'message',
             'cancelled: still running past its cancel deadline; its node did not stop it', 'permanent', false, 'at', $1::float8))
      FROM overdue WHERE j.id = overdue.id AND j.status = 'running'
    RETURNING j.id),
  gone AS (DELETE FROM nodes n USING dead WHERE n.id = dead.id RETURNING n.id),
  lapsed AS (DELETE FROM job_event_watchers w
              WHERE w.id IN (SELECT x.id FROM job_event_watchers x WHERE x.lease_until < now() FOR UPDATE SKIP LOCKED))
  SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM gone) AS nodes,
         (SELECT count(*) FROM rescued WHERE status = 'pending') AS interrupted,
         (SELECT count(*) FROM rescued WHERE status = 'cancelled') + (SELECT count(*) FROM reaped) AS cancelled`;

// A node leaving: what still runs for it goes back (normally nothing: it drained), its row goes.
const LEAVE = `WITH rescued AS (UPDATE jobs SET ${RESCUED("$2")} WHERE status = 'running' AND owner = $1 RETURNING id, status),
  gone AS (DELETE FROM nodes WHERE id = $1)
  SELECT count(*) FILTER (WHERE status = 'pending') AS pending FROM rescued`;

interface NodeRow {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  heartbeat_age_ms: number;
  lease_until: number;
  stopping: boolean;
  running: number;
}

class ControlSession implements NodeSession {
  private readonly events = new EventEmitter();
  private ended = false;

  constructor(
    readonly id: string,
    private readonly client: pg.Client,
    private readonly pool: pg.Pool,
    private readonly target: Target,
    private readonly forget: (s: ControlSession) => void,
    private readonly wakeups: Wakeups,
  ) {
    const lost = (why: string) => {
      if (this.ended) return;
      this.end();
      this.events.emit("lost", why);
    };
    client.on("error", (err) => {
      const e = pgFailure(err, target);
      lost(`the control connection failed: ${e instanceof Error ? e.message : String(e)}`);
    });
    client.on("end", () => lost("the control connection was closed"));
    client.on("notification", (n) => {
      if (this.ended) return;
      if (n.channel === JOBS_CHANNEL) {
        // Its own store's NOTIFY: its engine knew at once.
        if (n.payload !== wakeups.token) this.events.emit("jobs");
      } else if (n.channel === CONTROL_CHANNEL) {
        const notice = cancelNoticeFor(n.payload, id);
        if (notice) this.events.emit("cancel", notice);
      }
    });
  }

  on<E extends keyof NodeSessionEvents>(event: E, listener: NodeSessionEvents[E]): void {
    this.events.on(event, listener);
  }

  async heartbeat(leaseMs: number): Promise<Heartbeat> {
    try {
      const r = await this.client.query<{ lease_until: number | null; db_now: number; cancels: CancelNotice[]; listening: boolean }>({
        name: "tw_node_heartbeat",
        text: HEARTBEAT,
        values: [this.id, leaseMs],
      });
      const row = r.rows[0]!;
      return { leaseUntil: row.lease_until, storeNow: row.db_now, cancels: row.cancels, listening: row.listening };
    } catch (err) {
      throw pgFailure(err, this.target);
    }
  }

  async markStopping(): Promise<void> {
    try {
      await this.pool.query("UPDATE nodes SET stopping = true WHERE id = $1", [this.id]);
    } catch (err) {
      throw pgFailure(err, this.target);
    }
  }

  async leave(now: number): Promise<void> {
    try {
      const r = await this.pool.query<{ pending: number }>(LEAVE, [this.id, now]);
      if (r.rows[0]!.pending > 0) this.wakeups.jobsClaimable();
    } catch (err) {
      throw pgFailure(err, this.target);
    } finally {
      await this.close();
    }
  }

  abandon(): void {
    this.end();
  }

  /** Ends the control session (its lock goes with it); idempotent. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.forget(this);
    // Terminate tells the server at once; a server that cannot hear it (a cut network) ends
    // the session itself once it has been idle IDLE_SESSION_TIMEOUT.
    this.client.end().catch(() => {});
  }
}

/** A tw_control payload as the cancel notice it carries for node `self`, or null (another node's, or not one). */
export function cancelNoticeFor(payload: string | undefined, self: string): CancelNotice | null {
  try {
    const m = JSON.parse(payload ?? "") as { cancel?: unknown; node?: unknown; attempt?: unknown; graceLeftMs?: unknown };
    if (m.node !== self || typeof m.cancel !== "number" || typeof m.attempt !== "number" || typeof m.graceLeftMs !== "number") return null;
    return { id: m.cancel, attempt: m.attempt, graceLeftMs: m.graceLeftMs };
  } catch {
    return null;
  }
}

export function pgNodes(pool: pg.Pool, url: string, target: Target, wakeups: Wakeups): NodeStore & { closeAll(): Promise<void> } {
  const sessions = new Set<ControlSession>();

  async function openControl(who: NodeIdentity): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: nodeSessionName(who),
      // The kernel probes a silent peer: a dead server or a cut network is noticed on this side.
      keepAlive: true,
      keepAliveInitialDelayMillis: 1000,
      types: TYPES,
    });
    // An error is reported to whoever waits on the client (connect, a query); once the session
    // takes over (ControlSession), to it as well. Without a listener an error between two
    // statements (the server closing the connection) would end the process.
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  return {
    shared: true,
    async register(who, leaseMs) {
      let client: pg.Client | undefined;
      // A connection that opened but is then not answered (a network that hangs rather than
      // fails) would hold a registration for ever: it is given up after REGISTER_TIMEOUT_MS.
      let deadline: NodeJS.Timeout | undefined;
      try {
        client = await openControl(who);
        const c = client;
        deadline = setTimeout(() => void c.end().catch(() => {}), REGISTER_TIMEOUT_MS);
        await c.query(`SET idle_session_timeout = '${IDLE_SESSION_TIMEOUT}'; SET statement_timeout = '${CONTROL_STATEMENT_TIMEOUT}'`);
        for (let i = 0; i < REGISTER_TRIES; i++) {
          try {
            const r = await client.query(REGISTER, [who.id, who.host, who.pid, leaseMs, LOCK_NAMESPACE]);
            if (r.rowCount === 1) {
              // Listening before the session is handed out: a session never exists deaf.
              if (wakeups.enabled) await client.query(`LISTEN ${JOBS_CHANNEL}; LISTEN ${CONTROL_CHANNEL}`);
              clearTimeout(deadline);
              const s = new ControlSession(who.id, client, pool, target, (x) => sessions.delete(x), wakeups);
              sessions.add(s);
              return s;
            }
            // The key drawn is locked by a session (the sequence came round): draw another.
          } catch (err) {
            // A session lock had in a statement that failed stays held: let it go first.
            await client.query("SELECT pg_advisory_unlock_all()");
            if (err instanceof pg.DatabaseError && err.code === "23505") {
              if (err.constraint === "nodes_pkey") throw conflict(`a node with id ${who.id} is already registered`);
              continue; // lock_key taken by a node row whose lock is free: draw another
            }
            throw err;
          }
        }
        throw conflict(`no free lock key for a node after ${REGISTER_TRIES} tries`);
      } catch (err) {
        clearTimeout(deadline);
        await client?.end().catch(() => {});
        throw pgFailure(err, target);
      }
    },
    async list() {
      const r = await pool.query<NodeRow>(
        `SELECT n.id, n.host, n.pid, n.started_at, n.heartbeat_at, n.lease_until, n.stopping,
                (extract(epoch FROM now() - n.heartbeat_at) * 1000)::float8 AS heartbeat_age_ms,
                (SELECT count(*) FROM jobs j WHERE j.status = 'running' AND j.owner = n.id) AS running
           FROM nodes n ORDER BY n.started_at, n.id`,
      );
      return r.rows.map(
        (n): NodeRecord => ({ id: n.id, host: n.host, pid: n.pid, startedAt: n.started_at, heartbeatAt: n.heartbeat_at, heartbeatAgeMs: Math.max(0, Math.round(n.heartbeat_age_ms)), leaseUntil: n.lease_until, stopping: n.stopping, running: n.running }),
      );
    },
    async rescueDead({ now, silentMs, leaseMs }) {
      const r = await pool.query<{ nodes: string[]; interrupted: number; cancelled: number }>({ name: "tw_nodes_rescue_dead", text: RESCUE_DEAD, values: [now, silentMs, LOCK_NAMESPACE, leaseMs] });
      const out = r.rows[0]!;
      if (out.interrupted > 0) wakeups.jobsClaimable();
      return out;
    },
    async closeAll() {
      for (const s of [...sessions]) await s.close();
    },
  };
}
