// liteque (SQLite through drizzle-orm on better-sqlite3): a library like plainjob; its Runner
// polls the database file from the worker process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, asc, eq, isNull, lt, lte, or } from "drizzle-orm";
import { buildDBClient, Runner, SqliteQueue } from "liteque";
import { version } from "../lib/util.mjs";

export const id = "liteque";
export const label = "liteque";
const POLL_MS = 1;

export const settings = (conc) =>
  `liteque ${version("liteque")} on better-sqlite3 ${version("better-sqlite3")} with liteque's own pragmas (journal_mode=WAL, synchronous=NORMAL: no fsync per commit, cache_size=64 MiB); ` +
  `enqueue in the bench's process (awaiting each enqueue; liteque has no batch enqueue); one worker process, Runner concurrency 1 or ${conc}, poll interval ${POLL_MS} ms, timeoutSecs 60; completed jobs are deleted (liteque's behaviour). liteque's attemptDequeue() is replaced by the same drizzle statements in a synchronous transaction, because the original (an async function inside better-sqlite3's transaction()) throws on better-sqlite3 ≥ 11.10`;

/**
 * B at liteque's best: concurrency 1. Found with `node bench/concurrency.mjs` on the 2-core VM
 * while other work shared it, 2026-12-03, N=2,000: 1 → 1,616/s, 3 → 1,253/s, 10 → 1,593/s,
 * 50 → 1,233/s. Each claim sorts the whole queue under SQLite's one write lock, so more slots
 * only contend (and is B's concurrency 1 already).
 */
export const BEST_CONCURRENCY = 1;

export const layout = (concurrency) => ({ processes: 1, perProcess: concurrency });

export async function probe() {
  return null;
}

/**
 * liteque 0.8.0 dequeues with an async function inside better-sqlite3's transaction(), which
 * better-sqlite3 refuses since 11.10 ("Transaction function cannot return a promise",
 * karakeep-app/karakeep#1594), and this bench must use better-sqlite3 12. This is liteque's
 * own attemptDequeue, statement for statement through drizzle, in a synchronous IMMEDIATE
 * transaction (which is also what the original meant: the claim is atomic).
 */
class SyncDequeueQueue extends SqliteQueue {
  async attemptDequeue(options) {
    const t = this.db._.fullSchema.tasksTable;
    return this.db.transaction(
      (txn) => {
        const now = new Date();
        const jobs = txn
          .select()
          .from(t)
          .where(and(eq(t.queue, this.queueName), or(lte(t.availableAt, now), isNull(t.availableAt)), or(eq(t.status, "pending"), eq(t.status, "pending_retry"), and(eq(t.status, "running"), lt(t.expireAt, now)))))
          .orderBy(asc(t.priority), asc(t.createdAt))
          .limit(1)
          .all();
        if (jobs.length === 0) return null;
        const job = jobs[0];
        if (job.numRunsLeft === 0) {
          txn.delete(t).where(and(eq(t.id, job.id), eq(t.allocationId, job.allocationId))).run();
          return null;
        }
        const result = txn
          .update(t)
          .set({ status: "running", numRunsLeft: job.numRunsLeft - 1, allocationId: Math.random().toString(36).substring(2, 15), expireAt: new Date(Date.now() + options.timeoutSecs * 1000) })
          .where(and(eq(t.id, job.id), eq(t.allocationId, job.allocationId)))
          .returning()
          .all();
        return result[0] ?? null;
      },
      { behavior: "immediate" },
    );
  }
}

const open = (path, migrate) => {
  const db = buildDBClient(path, { runMigrations: migrate });
  const queue = new SyncDequeueQueue("bench", db, { defaultJobArgs: { numRetries: 2 }, keepFailedJobs: false });
  return { db, queue, close: () => db.session.client.close() };
};

export async function openQueue() {
  const dir = mkdtempSync(join(tmpdir(), "lq-bench-"));
  const path = join(dir, "queue.db");
  const q = open(path, true);
  return {
    ref: { path },
    add: (i) => q.queue.enqueue({ i }),
    addBatch: null,
    /**
     * Only to queue the jobs of workload B (not measured): the row liteque's enqueue() writes,
     * many per transaction, since liteque has no batch enqueue.
     */
    fill(from, count) {
      const t = q.db._.fullSchema.tasksTable;
      q.db.transaction((tx) => {
        for (let k = 0; k < count; k++) {
          tx.insert(t).values({ queue: "bench", payload: JSON.stringify({ i: from + k }), numRunsLeft: 3, maxNumRuns: 3, allocationId: Math.random().toString(36).substring(2, 15), priority: 0, availableAt: new Date() }).run();
        }
      });
    },
    async drained() {
      const s = await q.queue.stats();
      return s.pending + s.pending_retry + s.running === 0;
    },
    close() {
      q.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs in a worker process. */
export async function startWorker(ref, { concurrency, onStart, onComplete }) {
  const q = open(ref.path, false);
  const runner = new Runner(
    q.queue,
    {
      run: async (job) => onStart(() => job.data.i),
      onComplete: async () => onComplete(),
      onError: async (job) => process.stderr.write(`liteque: job ${job.id} failed: ${job.error}\n`),
    },
    { concurrency, pollIntervalMs: POLL_MS, timeoutSecs: 60 },
  );
  let running;
  return {
    go() {
      running = runner.run();
    },
    async stop() {
      runner.stop();
      await running;
      q.close();
    },
  };
}
