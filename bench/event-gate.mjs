// What the job-event triggers cost PostgreSQL on a drain (issue 14; migration 008 writes
// events only while some process watches): one daemon drains N no-op jobs enqueued in bulk
// into a paused queue, and the CPU time of the database's backends (from /proc: the server
// runs on this machine) is divided by N. Modes, interleaved run by run (A B C A B C):
//
//   none         nobody watches (no event stream open on any daemon)
//   watch        one board-wide event stream open on the daemon for the drain (it must see
//                every job complete)
//   no-triggers  the event triggers dropped from the database: the floor (no events at all)
//   recording    a watch held by the bench itself (a row in job_event_watchers), no stream:
//                what the triggers cost when they write, without a reader's reads
//
//   node bench/event-gate.mjs [--n 5000] [--runs 3] [--modes none,watch,no-triggers] [--concurrency 3]
//
// Needs `npm run build` (the daemon is dist/) and PostgreSQL at TEAMWORK_BENCH_PG_URL (default
// postgres://postgres@127.0.0.1:5432/test); each run's database (tw_bench_eg_*) is dropped.
// A build from before migration 008 runs too (its triggers write in every mode but
// no-triggers): copy this file next to that build's bench/ to compare.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { startTeamwork } from "./teamwork.mjs";
import { sleep, until } from "./lib/util.mjs";
import { cpuOfAll, cpuSeconds } from "./lib/procstat.mjs";

const { values: flags } = parseArgs({
  options: {
    n: { type: "string", default: "5000" },
    runs: { type: "string", default: "3" },
    modes: { type: "string", default: "none,watch,no-triggers" },
    concurrency: { type: "string", default: "3" },
  },
});
const N = Number(flags.n);
const RUNS = Number(flags.runs);
const MODES = flags.modes.split(",").map((m) => m.trim());
for (const m of MODES) if (!["none", "watch", "no-triggers", "recording"].includes(m)) throw new Error(`--modes: unknown mode ${m}`);
const BATCH = 1000;
const BASE = process.env.TEAMWORK_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const urlFor = (db) => Object.assign(new URL(BASE), { pathname: `/${db}` }).toString();

const admin = new pg.Client({ connectionString: BASE });
await admin.connect();

async function drained(client) {
  if ((await client.call("jobsList", { status: "pending", limit: 1 })).jobs.length) return false;
  return (await client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0;
}

async function backends(c) {
  return (await c.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")).rows.map((r) => r.pid);
}

async function run(mode, i) {
  const name = `tw_bench_eg_${process.pid}_${i}`;
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  // The trigger functions' calls and time (pg_stat_user_functions), read after the drain.
  await admin.query(`ALTER DATABASE ${name} SET track_functions = 'pl'`);
  if (process.env.EG_EXPLAIN) {
    await admin.query(`ALTER DATABASE ${name} SET session_preload_libraries = 'auto_explain'`);
    await admin.query(`ALTER DATABASE ${name} SET auto_explain.log_min_duration = '${process.env.EG_EXPLAIN}ms'`);
    await admin.query(`ALTER DATABASE ${name} SET auto_explain.log_nested_statements = on`);
    await admin.query(`ALTER DATABASE ${name} SET auto_explain.log_analyze = on`);
    await admin.query(`ALTER DATABASE ${name} SET auto_explain.log_triggers = on`);
  }
  const url = urlFor(name);
  const home = mkdtempSync(join(tmpdir(), "tw-bench-eg-"));
  const db = new pg.Client({ connectionString: url });
  let d;
  let stream;
  try {
    d = await startTeamwork({ home, concurrency: Number(flags.concurrency), durability: "full", config: { database: url } });
    await db.connect();
    if (mode === "no-triggers") {
      for (const t of ["job_events_inserted", "job_events_updated"]) await db.query(`DROP TRIGGER ${t} ON jobs`);
      await db.query("DROP TRIGGER job_events_logged ON job_logs");
    }
    if (mode === "recording") {
      await db.query("INSERT INTO job_event_watchers (id, lease_until) VALUES ('bench', now() + interval '1 hour')");
      await db.query("UPDATE job_event_log SET recorded_from = pg_current_xact_id() WHERE recorded_from IS NULL");
    }
    await d.client.call("queuePause", {});
    for (let k = 0; k < N; k += BATCH) await d.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: Math.min(BATCH, N - k) }, (_, j) => ({ type: "bench-noop", payload: { i: k + j } })) });
    let complete = 0;
    if (mode === "watch") {
      stream = d.client.stream("eventsStream", {}, (e) => {
        if (e.type === "job:status" && e.data.job.status === "complete") complete++;
      });
      await stream.opened;
    }
    await sleep(300);
    const pids0 = await backends(db);
    const cpu0 = cpuOfAll(pids0);
    const daemon0 = cpuSeconds(d.pid) ?? 0;
    const rows0 = (await db.query("SELECT count(*)::int AS n FROM job_events")).rows[0].n;
    const t = performance.now();
    await d.client.call("queueResume", {});
    await until(() => drained(d.client), { timeoutMs: 600_000, intervalMs: 10, what: `${N} jobs` });
    const seconds = (performance.now() - t) / 1000;
    const pids1 = await backends(db);
    const serverS = cpuOfAll([...new Set([...pids0, ...pids1])]) - cpu0;
    const daemonS = (cpuSeconds(d.pid) ?? 0) - daemon0;
    const rows = (await db.query("SELECT count(*)::int AS n FROM job_events")).rows[0].n - rows0;
    await sleep(1200); // the backends flush their counters once idle, at most once a second
    const fns = (await db.query("SELECT funcname, calls::float8 AS calls, total_time::float8 AS ms FROM pg_stat_user_functions WHERE funcname LIKE 'job_events_%' OR funcname = 'jobs_claim' ORDER BY funcname")).rows;
    const triggers = fns.filter((f) => f.funcname.startsWith("job_events_"));
    const fnText = fns.map((f) => `${f.funcname} ${f.calls} calls ${((f.ms * 1000) / N).toFixed(0)} µs/job`).join(", ");
    if (mode === "watch") await until(() => complete === N, { timeoutMs: 60_000, what: `the watcher to see ${N} completions (saw ${complete})` });
    return { mode, seconds, rate: N / seconds, serverUsPerJob: (serverS * 1e6) / N, daemonUsPerJob: (daemonS * 1e6) / N, eventsPerJob: rows / N, triggerUsPerJob: (triggers.reduce((a, f) => a + f.ms, 0) * 1000) / N, fnText };
  } finally {
    stream?.close();
    await db.end().catch(() => {});
    await d?.stop({ keepHome: true });
    rmSync(home, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  }
}

console.error(`event-gate bench: N=${N}, runs=${RUNS}, modes ${MODES.join(",")}`);
const results = [];
let i = 0;
for (let r = 0; r < RUNS; r++) {
  for (const mode of MODES) {
    const x = await run(mode, i++);
    results.push(x);
    console.error(`  run ${r + 1} ${mode.padEnd(11)} ${x.rate.toFixed(0)} jobs/s; server ${x.serverUsPerJob.toFixed(0)} µs/job; daemon ${x.daemonUsPerJob.toFixed(0)} µs/job; ${x.eventsPerJob.toFixed(2)} events/job; in the trigger functions ${x.triggerUsPerJob.toFixed(0)} µs/job`);
    console.error(`      ${x.fnText}`);
  }
}
for (const mode of MODES) {
  const xs = results.filter((x) => x.mode === mode).map((x) => x.serverUsPerJob);
  console.log(`${mode}: server CPU per job ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} µs (runs: ${xs.map((x) => x.toFixed(0)).join(", ")})`);
}
await admin.end();
