// The PostgreSQL store: several daemons, on several hosts, on one database. Every error it
// gives, opening included, is a StoreError (postgres/errors.ts): no SQLSTATE leaves this
// folder, and no message carries the database's password.

import type pg from "pg";
import type { Store, StoreOptions } from "../types.js";
import { createPool, targetOf } from "./connect.js";
import { guarded, pgFailure, type GuardContext } from "./errors.js";
import { migrate } from "./migrate.js";
import { pgBoards } from "./boards.js";
import { pgTaskEvents, pgTasks } from "./tasks.js";
import { pgMeta, pgSchedules } from "./schedules.js";
import { pgAttachments } from "./attachments.js";
import { pgFiles } from "./files.js";
import { pgJobs } from "./jobs.js";
import { pgEvents, withEventHints, type PgEvents } from "./events.js";
import { pgNodes } from "./nodes.js";
import { pgWakeups, type Wakeups } from "./wakeups.js";

export { redactUrl } from "./connect.js";

/** Connections one store (one daemon) may hold at once; requests beyond wait for one to be free. */
const POOL_MAX = 10;

/**
 * Opens the store on the database at `url` and migrates it forward (once, however many
 * daemons start at the same moment). Refuses too_new for a schema from a newer teamwork, and
 * unavailable, with the host and the reason, for a database that cannot be reached (within
 * CONNECT_TIMEOUT_MS: never a hang).
 */
export async function openPostgresStore(url: string, opts: StoreOptions): Promise<Store> {
  const target = targetOf(url);
  const pool = createPool(url, { durability: opts.durability, max: POOL_MAX });
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    throw pgFailure(err, target);
  }
  let events: PgEvents;
  try {
    events = await pgEvents(pool, url);
  } catch (err) {
    await pool.end().catch(() => {});
    throw pgFailure(err, target);
  }
  let closed = false;
  const ctx: GuardContext = { target, closed: () => closed };
  const wakeups = pgWakeups(pool, opts.notify !== false);
  const { closeAll: closeNodeSessions, ...nodes } = pgNodes(pool, url, target, wakeups);
  const store = storeOn(pool, opts, ctx, events, wakeups, async () => {
    if (closed) return;
    closed = true;
    events.leaveWatch();
    events.signal.close();
    wakeups.close();
    await closeNodeSessions();
    await pool.end();
  });
  return { ...store, nodes: guarded(nodes, ctx), where: `postgres://${target.where}` };
}

function storeOn(pool: pg.Pool, opts: StoreOptions, ctx: GuardContext, events: PgEvents, wakeups: Wakeups, close: () => Promise<void>): Omit<Store, "where" | "nodes"> {
  return {
    boards: guarded(pgBoards(pool), ctx),
    tasks: guarded(pgTasks(pool, opts.taskEvents), ctx),
    taskEvents: guarded(pgTaskEvents(pool), ctx),
    jobs: guarded(withEventHints(pgJobs(pool, wakeups), events.signal, events.prune), ctx),
    schedules: guarded(pgSchedules(pool, wakeups), ctx),
    meta: guarded(pgMeta(pool), ctx),
    attachments: guarded(pgAttachments(pool), ctx),
    files: guarded(pgFiles(pool, ctx.target), ctx),
    // Only the reads are guarded: parse, compare and onWrite are synchronous and touch no connection.
    events: { ...events.events, ...guarded({ watch: events.events.watch, head: events.events.head, read: events.events.read }, ctx) },
    close,
  };
}
