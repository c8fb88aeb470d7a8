// BullMQ on the local Redis: the client enqueues over TCP (loopback) to Redis; the worker
// process blocks on Redis for new jobs.
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { version, withTimeout } from "../lib/util.mjs";

export const id = "bullmq";
export const label = "BullMQ";
const HOST = "127.0.0.1";
const PORT = 6379;
const connection = { host: HOST, port: PORT };
/** Every queue name this bench uses starts with this, so a final sweep can find leftovers. */
export const PREFIX = "tw-bench-";

let redisInfo = "";
export const settings = (conc) =>
  `BullMQ ${version("bullmq")}, ioredis ${version("ioredis")}, Redis ${redisInfo} on ${HOST}:${PORT} as configured here; ` +
  `the client enqueues with add() (awaiting each) and addBulk() of 1,000; one worker process, Worker concurrency 1 or ${conc}; BullMQ's default job options (completed jobs are kept, as teamwork keeps them)`;

/**
 * B at BullMQ's best: Worker concurrency 50. Found with `node bench/concurrency.mjs` (B, one
 * worker process, no-op jobs) on the 2-core VM while other work shared it, 2026-12-03: N=2,000:
 * 1 → 3,274/s, 3 → 4,057/s, 10 → 4,892/s, 50 → 5,905/s; N=5,000, median of 2: 10 → 4,419/s,
 * 50 → 8,257/s, 100 → 6,655/s, 200 → 8,155/s. The worker fetches the next job while its
 * handlers run, so more slots keep more round trips to Redis in flight; past 50 no gain.
 */
export const BEST_CONCURRENCY = 50;

export const layout = (concurrency) => ({ processes: 1, perProcess: concurrency });

export async function probe() {
  const redis = new Redis({ host: HOST, port: PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  redis.on("error", () => {});
  try {
    await withTimeout(redis.connect(), 3000, "connect to Redis");
    const info = await redis.info();
    const v = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
    const aof = /aof_enabled:(\d)/.exec(info)?.[1] === "1";
    const save = (await redis.config("GET", "save"))[1];
    const fsync = aof ? (await redis.config("GET", "appendfsync"))[1] : null;
    redisInfo = `${v} (${aof ? `AOF on, appendfsync ${fsync}` : "AOF off"}, ${save ? `RDB snapshots "${save}"` : "no RDB snapshots"}${!aof ? ": nothing is fsync'd, a Redis crash loses every job" : ""})`;
    return null;
  } catch (err) {
    return `Redis at ${HOST}:${PORT} is not reachable (${err.message})`;
  } finally {
    redis.disconnect();
  }
}

let seq = 0;
export async function openQueue() {
  const name = `${PREFIX}${process.pid}-${seq++}`;
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  return {
    ref: { name },
    add: (i) => queue.add("bench", { i }),
    addBatch: (from, count) => queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: "bench", data: { i: from + k } }))),
    async drained() {
      const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "paused", "waiting-children");
      return Object.values(c).every((n) => n === 0);
    },
    async close() {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
}

/** Deletes whatever keys of this bench a crashed run left in Redis (bounded SCAN). */
export async function sweep() {
  const redis = new Redis({ host: HOST, port: PORT, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on("error", () => {});
  let removed = 0;
  try {
    let cursor = "0";
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `bull:${PREFIX}*`, "COUNT", 1000);
      if (keys.length) removed += await redis.del(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } catch {
    // Redis gone: nothing to sweep.
  } finally {
    redis.disconnect();
  }
  return removed;
}

/** Runs in a worker process. */
export async function startWorker(ref, { concurrency, onStart, onComplete }) {
  const worker = new Worker(ref.name, async (job) => onStart(() => job.data.i), { connection, concurrency, autorun: false });
  worker.on("completed", onComplete);
  worker.on("error", (err) => process.stderr.write(`bullmq worker: ${err.message}\n`));
  await worker.waitUntilReady();
  let running;
  return {
    go() {
      running = worker.run();
    },
    async stop() {
      await worker.close();
      await running;
    },
  };
}
