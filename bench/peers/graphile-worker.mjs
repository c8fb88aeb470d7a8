// graphile-worker on the local PostgreSQL (fsync and synchronous_commit as the server is
// configured, on by default): the client adds jobs through its own pool; the worker process
// runs graphile-worker's runner, woken by LISTEN/NOTIFY.
import { EventEmitter } from "node:events";
import pg from "pg";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { version, withTimeout } from "../lib/util.mjs";

export const id = "graphile-worker";
export const label = "graphile-worker";
/** The schema this bench creates (and drops at the end); never graphile-worker's default. */
export const SCHEMA = "tw_bench_graphile_worker";
const CANDIDATES = ["postgres://postgres@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"];
const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`);
});

let connectionString = CANDIDATES[0];
let serverInfo = "";
export const settings = (conc) =>
  `graphile-worker ${version("graphile-worker")}, pg ${version("pg")}, PostgreSQL ${serverInfo} on 127.0.0.1:5432 (database test, schema ${SCHEMA}); ` +
  `the client adds jobs with WorkerUtils.addJob() (awaiting each) and addJobs() of 1,000; one worker process, concurrency 1 or ${conc}, graphile-worker's defaults otherwise (no local queue, no completion batching); completed jobs are deleted (graphile-worker's behaviour)`;

/**
 * B at graphile-worker's best: concurrency 10. Found with `node bench/concurrency.mjs` (B, one
 * worker process, no-op jobs) on the 2-core VM while other work shared it, 2026-12-03: N=2,000:
 * 1 → 1,453/s, 3 → 2,006/s, 10 → 2,430/s, 50 → 1,398/s; N=4,000, median of 2: 3 → 1,146/s,
 * 5 → 1,293/s, 10 → 2,674/s, 20 → 2,719/s. Each slot claims and completes its own jobs over its
 * own connection; 20 was no faster than 10 (within the noise) and needs twice the connections,
 * and at 50 the claims contend on PostgreSQL's locks.
 */
export const BEST_CONCURRENCY = 10;

export const layout = (concurrency) => ({ processes: 1, perProcess: concurrency });

async function query(sql, cs = connectionString) {
  const client = new pg.Client({ connectionString: cs, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function probe() {
  const errors = [];
  for (const cs of CANDIDATES) {
    try {
      const r = await withTimeout(query("select current_setting('server_version') v, current_setting('fsync') f, current_setting('synchronous_commit') s, current_user u", cs), 5000, "PostgreSQL");
      const { v, f, s, u } = r.rows[0];
      connectionString = cs;
      serverInfo = `${v} (user ${u}, fsync=${f}, synchronous_commit=${s}: every commit is flushed before it returns)`;
      return null;
    } catch (err) {
      errors.push(`${cs.replace(/^postgres:\/\//, "")}: ${err.message}`);
    }
  }
  return `PostgreSQL is not reachable (${errors.join("; ")})`;
}

export async function dropSchema() {
  try {
    await query(`drop schema if exists ${SCHEMA} cascade`);
    return true;
  } catch {
    return false;
  }
}

export async function openQueue() {
  // A fresh schema per workload, so no jobs or statistics carry over.
  await dropSchema();
  const utils = await makeWorkerUtils({ connectionString, schema: SCHEMA, logger: quiet });
  await utils.migrate();
  return {
    ref: { connectionString },
    add: (i) => utils.addJob("bench", { i }),
    addBatch: (from, count) => utils.addJobs(Array.from({ length: count }, (_, k) => ({ identifier: "bench", payload: { i: from + k } }))),
    async drained() {
      const r = await utils.withPgClient((c) => c.query(`select count(*)::int n from ${SCHEMA}._private_jobs`));
      return r.rows[0].n === 0;
    },
    async close() {
      await utils.release();
    },
  };
}

/** Runs in a worker process. */
export async function startWorker(ref, { concurrency, onStart, onComplete }) {
  const pgPool = new pg.Pool({ connectionString: ref.connectionString, max: concurrency + 2 });
  pgPool.on("error", (err) => process.stderr.write(`graphile-worker pool: ${err.message}\n`));
  pgPool.on("connect", (client) => client.on("error", (err) => process.stderr.write(`graphile-worker client: ${err.message}\n`)));
  await pgPool.query("select 1");
  // Our own emitter, so no event is missed while run() starts up.
  const events = new EventEmitter();
  events.on("job:success", onComplete);
  let runner;
  return {
    async go() {
      runner = await run({
        pgPool,
        schema: SCHEMA,
        concurrency,
        noHandleSignals: true,
        logger: quiet,
        events,
        taskList: { bench: async (payload) => onStart(() => payload.i) },
      });
    },
    async stop() {
      await runner?.stop();
      await pgPool.end();
    },
  };
}
