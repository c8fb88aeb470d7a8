// plainjob (SQLite, better-sqlite3): a library, so enqueueing is an insert in the caller's
// own process; its workers poll the same database file from their own processes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { better, defineQueue, defineWorker, JobStatus } from "plainjob";
import { version } from "../lib/util.mjs";

export const id = "plainjob";
export const label = "plainjob";
const POLL_MS = 1;
const quiet = { info() {}, warn() {}, debug() {}, error: (m) => process.stderr.write(`plainjob: ${m}\n`) };

export const settings = (conc) =>
  `plainjob ${version("plainjob")} on better-sqlite3 ${version("better-sqlite3")} (SQLite WAL) with plainjob's own pragmas (journal_mode=WAL, synchronous=NORMAL: no fsync per commit, busy_timeout=5000); ` +
  `enqueue in the bench's process (plainjob is a library: add() is a synchronous insert, addMany() one transaction); ` +
  `one worker process running 1 or ${conc} plainjob workers (its concurrency; its README's other way to scale, several worker processes, was slower in a trial here, as they contend for SQLite's write lock), poll interval ${POLL_MS} ms (default 1 s)`;

/**
 * B at plainjob's best: 3 workers. Found with `node bench/concurrency.mjs` (B, one worker
 * process, 1 ms poll) on the 2-core VM while other work shared it, 2026-12-03: N=2,000:
 * 1 → 4,417/s, 3 → 10,504/s, 10 → 11,257/s, 50 → 12,179/s; N=5,000, median of 2: 3 → 15,481/s,
 * 10 → 14,658/s, 50 → 14,668/s, 100 → 15,723/s. Flat from 3 up: each claim takes SQLite's one
 * write lock, so more workers in one process only poll more; 3 is as fast as any (and is B's
 * pool of 3 already).
 */
export const BEST_CONCURRENCY = 3;

/** Like the other peers: one worker process; concurrency n = n plainjob workers in it. */
export const layout = (concurrency) => ({ processes: 1, perProcess: concurrency });

export async function probe() {
  return null;
}

export async function openQueue() {
  const dir = mkdtempSync(join(tmpdir(), "pj-bench-"));
  const path = join(dir, "queue.db");
  const queue = defineQueue({ connection: better(new Database(path)), logger: quiet });
  return {
    ref: { path },
    add: (i) => queue.add("bench", { i }),
    addBatch: (from, count) => queue.addMany("bench", Array.from({ length: count }, (_, k) => ({ i: from + k }))),
    drained: () => queue.countJobs({ status: JobStatus.Pending }) + queue.countJobs({ status: JobStatus.Processing }) === 0,
    close() {
      queue.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs in a worker process. */
export async function startWorker(ref, { concurrency, onStart, onComplete }) {
  const queue = defineQueue({ connection: better(new Database(ref.path)), logger: quiet });
  const workers = Array.from({ length: concurrency }, () =>
    defineWorker("bench", (job) => onStart(() => JSON.parse(job.data).i), { queue, pollIntervall: POLL_MS, logger: quiet, onCompleted: onComplete }),
  );
  return {
    go() {
      for (const w of workers) void w.start();
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop()));
      queue.close();
    },
  };
}
