// Scale-out on PostgreSQL (issue 14 item 8): the same workloads for teamwork with 1, 2 and 3
// daemons on one database, and for graphile-worker 0.17 with 1, 2 and 3 worker processes on a
// database of its own on the same server, in the same run (fsync and synchronous_commit as the
// server has them: checked and reported; teamwork at durability "full" = synchronous_commit on,
// as graphile-worker's commits).
//
//   throughput  N no-op jobs enqueued in bulk (batches of 1,000) into a paused queue, then
//               drained by every daemon / worker at once: jobs/s from the resume to the last
//               completion
//   latency     enqueue→start of K jobs enqueued one by one, --gap-ms apart, after 20 warm-up
//               jobs; with several daemons every job is enqueued through daemon A, whose
//               so-stamp type is paused (on A only), so another daemon starts it: enqueue→start
//               across nodes (counted)
//   failover    a job runs; its node is killed (kill -9) or cut off (a blackhole of its
//               connections to PostgreSQL, through a fault proxy per daemon: bench/lib/
//               fault-proxy.mjs); the time until the job's next attempt starts on another
//               daemon. With one daemon: the daemon is restarted at once (after a blackhole, the
//               old process is killed and its sessions stay open on the server, as after a
//               partition) and the time is until the restarted daemon starts the job again
//
// A build that refuses a second daemon on a database (one daemon per database, before nodes)
// is reported as such for 2 and 3 daemons; nothing crashes.
//
//   node bench/scale-out.mjs [--n 5000] [--runs 3] [--latency 200] [--nodes 1,2,3]
//                            [--failover-runs 5] [--failover-timeout-ms 20000] [--only teamwork,graphile-worker]
//                            [--label NAME: results as scale-out-<date>-NAME]
//
// Needs `npm run build` (the daemons are dist/) and `npm install --prefix bench`, and
// PostgreSQL at TEAMWORK_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test). Every
// database it makes (tw_bench_so_*) is dropped at the end, also on Ctrl-C.
// Results: bench/results/scale-out-<date>.json and .md (--no-save: printed only).

import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus, release, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { Logger, makeWorkerUtils } from "graphile-worker";
import { startTeamwork, liveDaemons } from "./teamwork.mjs";
import { startFaultProxy } from "./lib/fault-proxy.mjs";
import * as gw from "./peers/graphile-worker.mjs";
import { cell, fmt, median, pct, sleep, until, version, wallNow, withTimeout } from "./lib/util.mjs";
import { cpuOfAll, cpuSeconds, machineCpu } from "./lib/procstat.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const NOOP = join(here, "noop.mjs");
const SO_JOBS = join(here, "scale-out-jobs.mjs");
const LEDGER_JOBS = fileURLToPath(new URL("../tests/fixtures/jobs/ledger.mjs", import.meta.url));
const PEER_WORKER = join(here, "peers/worker.mjs");
const GW_HOLD = join(here, "lib/gw-hold-worker.mjs");
const BATCH = 1000;
const WARM = 20;

const { values: flags } = parseArgs({
  options: {
    n: { type: "string", default: "5000" },
    runs: { type: "string", default: "3" },
    latency: { type: "string", default: "200" },
    "gap-ms": { type: "string", default: "5" },
    nodes: { type: "string", default: "1,2,3" },
    concurrency: { type: "string", default: "3" },
    "failover-runs": { type: "string", default: "5" },
    "failover-timeout-ms": { type: "string", default: "20000" },
    "gw-failover-runs": { type: "string", default: "1" },
    only: { type: "string", default: "teamwork,graphile-worker" },
    "skip-failover": { type: "boolean", default: false },
    "no-save": { type: "boolean", default: false },
    label: { type: "string", default: "" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n"));
  process.exit(0);
}
const N = Number(flags.n);
const RUNS = Number(flags.runs);
const LAT = Number(flags.latency);
const GAP = Number(flags["gap-ms"]);
const NODES = flags.nodes.split(",").map(Number);
const CONC = Number(flags.concurrency);
const F_RUNS = Number(flags["failover-runs"]);
const F_TIMEOUT = Number(flags["failover-timeout-ms"]);
const GW_F_RUNS = Number(flags["gw-failover-runs"]);
const ONLY = new Set(flags.only.split(",").map((s) => s.trim()));
for (const [k, v] of Object.entries({ n: N, runs: RUNS, latency: LAT, "failover-runs": F_RUNS })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
for (const k of NODES) if (!Number.isInteger(k) || k < 1 || k > 8) throw new Error(`--nodes: ${k} is not a number of nodes from 1 to 8`);

const BASE = process.env.TEAMWORK_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const urlFor = (db) => {
  const u = new URL(BASE);
  u.pathname = `/${db}`;
  return u.toString();
};
const target = new URL(BASE);
const log = (...a) => console.error(...a);

// ---- the server, the databases, cleanup ---------------------------------------------------

const admin = new pg.Client({ connectionString: BASE, connectionTimeoutMillis: 5000 });
admin.on("error", () => {});
try {
  await admin.connect();
} catch (err) {
  console.error(`PostgreSQL does not answer at ${BASE}: ${err.message}. Start it (pg_ctlcluster 15 main start) or set TEAMWORK_BENCH_PG_URL.`);
  process.exit(2);
}
const server = (await admin.query("SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc, current_setting('shared_buffers') AS sb")).rows[0];
if (server.fsync !== "on") log(`warning: fsync is ${server.fsync} on this server: commits are not flushed; the figures are not comparable to a production server's`);

const databases = new Set();
const children = new Set();
async function freshDb(kind) {
  const name = `tw_bench_so_${kind}_${process.pid}_${databases.size}`;
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  databases.add(name);
  return { name, url: urlFor(name) };
}
async function dropDb(db) {
  await admin.query(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`).catch(() => {});
  databases.delete(db.name);
}
const tmpDirs = new Set();
const tempDir = (prefix) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
};
async function cleanup() {
  for (const d of [...liveDaemons]) await d.stop({ keepHome: true }).catch(() => {});
  for (const c of children) c.kill("SIGKILL");
  for (const name of [...databases]) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---- teamwork -----------------------------------------------------------------------------

class Refused extends Error {}

/** A daemon on `url` (through `proxy` if given), on `home`; Refused if the database is another daemon's. */
async function daemon(url, { home, proxy, concurrency = CONC } = {}) {
  try {
    return await startTeamwork({
      home,
      concurrency,
      durability: "full",
      config: { database: proxy ? proxy.urlThrough(url) : url, jobModules: [NOOP, SO_JOBS, LEDGER_JOBS] },
    });
  } catch (err) {
    if (/daemon\.database_taken/.test(err.message)) throw new Refused(err.message.split("\n").find((l) => l.includes("database_taken")) ?? err.message);
    throw err;
  }
}
/** Starts k daemons (homes made here); Refused if one is refused (the others are stopped). */
async function daemons(url, k, opts = {}) {
  const out = [];
  try {
    for (let i = 0; i < k; i++) out.push(await daemon(url, { ...opts, home: opts.homes?.[i] ?? tempDir("tw-bench-so-"), proxy: opts.proxies?.[i] }));
    return out;
  } catch (err) {
    for (const d of out) await d.stop({ keepHome: true });
    throw err;
  }
}
const stopAll = (ds) => Promise.all(ds.map((d) => d.stop({ keepHome: true })));
async function drained(client) {
  if ((await client.call("jobsList", { status: "pending", limit: 1 })).jobs.length) return false;
  return (await client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0;
}

/** The server's view of a database: its backends, commits, and the claim function's calls (track_functions = pl). */
async function serverStats(db) {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query("SELECT pg_stat_clear_snapshot()");
    const backends = (await c.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")).rows.map((r) => r.pid);
    const { commits } = (await c.query("SELECT xact_commit::float8 AS commits FROM pg_stat_database WHERE datname = current_database()")).rows[0];
    const f = (await c.query("SELECT calls::float8 AS calls, total_time::float8 AS ms FROM pg_stat_user_functions WHERE funcname = 'jobs_claim'")).rows[0] ?? { calls: 0, ms: 0 };
    return { backends, commits, claimCalls: f.calls, claimMs: f.ms };
  } finally {
    await c.end();
  }
}

async function twThroughput(k) {
  const db = await freshDb("tw");
  // The profile counts the claim function's calls (a per-database setting, read at connect).
  await admin.query(`ALTER DATABASE ${db.name} SET track_functions = 'pl'`);
  const homes = Array.from({ length: k }, () => tempDir("tw-bench-so-"));
  try {
    const first = await daemon(db.url, { home: homes[0] });
    await first.client.call("queuePause", {});
    for (let i = 0; i < N; i += BATCH) await first.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => ({ type: "bench-noop", payload: { i: i + j } })) });
    await first.stop({ keepHome: true });
    // Every daemon starts paused (the pause is kept in the database), then all resume at once.
    const ds = await daemons(db.url, k, { homes });
    try {
      // A daemon answers before it has read the saved pause (the engine starts after the socket
      // opens): a resume sent in that window would be undone by the load. Wait until each says paused.
      for (const d of ds) await until(async () => (await d.client.call("queueGet", {})).paused.all, { timeoutMs: 30_000, what: "the daemon to load the saved pause" });
      await sleep(1200); // the daemons' start-up statements reach the server's counters (flushed at most once a second)
      const s0 = await serverStats(db);
      const cpu0 = { daemons: ds.map((d) => cpuSeconds(d.pid) ?? 0), server: cpuOfAll(s0.backends), machine: machineCpu() };
      const t = performance.now();
      await Promise.all(ds.map((d) => d.client.call("queueResume", {})));
      await until(() => drained(ds[0].client), { timeoutMs: 600_000, intervalMs: 10, what: `${N} jobs on ${k} daemon(s)` });
      const seconds = (performance.now() - t) / 1000;
      const cpu1 = { daemons: ds.map((d) => cpuSeconds(d.pid) ?? 0), machine: machineCpu() };
      const s1Pids = (await serverStats(db)).backends;
      const serverCpu = cpuOfAll([...new Set([...s0.backends, ...s1Pids])]) - cpu0.server;
      await sleep(1200); // the backends flush their counters once idle, at most once a second
      const s1 = await serverStats(db);
      const counts = (await ds[0].client.call("daemonStatus", {})).counts.jobs;
      if (counts.complete !== N) throw new Error(`teamwork completed ${counts.complete} of ${N} (${JSON.stringify(counts)})`);
      const machine = { busy: cpu1.machine.busy - cpu0.machine.busy, total: cpu1.machine.total - cpu0.machine.total };
      const profile = {
        seconds,
        daemonCpuS: cpu1.daemons.map((c, i) => c - cpu0.daemons[i]),
        serverCpuS: serverCpu,
        machineBusyPct: (100 * machine.busy) / machine.total,
        machineCpus: cpus().length,
        commitsPerJob: (s1.commits - s0.commits) / N,
        claimCalls: s1.claimCalls - s0.claimCalls,
        claimMsPerCall: (s1.claimMs - s0.claimMs) / Math.max(1, s1.claimCalls - s0.claimCalls),
        jobsPerClaim: N / Math.max(1, s1.claimCalls - s0.claimCalls),
      };
      return { rate: N / seconds, profile };
    } finally {
      await stopAll(ds);
    }
  } finally {
    await dropDb(db);
  }
}

const profileText = (p) =>
  `${fmt(p.seconds)} s; CPU s: daemons ${p.daemonCpuS.map((x) => x.toFixed(1)).join(" + ")}, server backends ${p.serverCpuS.toFixed(1)}; machine busy ${p.machineBusyPct.toFixed(0)}% of ${p.machineCpus} CPUs; ` +
  `${p.commitsPerJob.toFixed(2)} commits/job; ${fmt(p.claimCalls)} claims (${p.jobsPerClaim.toFixed(1)} jobs/claim, ${p.claimMsPerCall.toFixed(2)} ms/claim in the server)`;

async function twLatency(k) {
  const db = await freshDb("tw");
  try {
    const ds = await daemons(db.url, k);
    try {
      const pids = new Set();
      const stamp = async (d) => {
        const { job } = await d.client.call("jobsEnqueue", { type: "so-stamp" });
        return job.id;
      };
      const warm = [];
      for (let i = 0; i < WARM; i++) {
        warm.push(await stamp(ds[i % k]));
        await sleep(GAP);
      }
      // With several daemons, every one must have started its engine (and so loaded the saved
      // pauses) before daemon A pauses the type: then the pause is A's alone (a pause is read
      // from the database at start). A daemon has when it ran a job.
      for (let round = 0; ; round++) {
        await until(() => drained(ds[0].client), { timeoutMs: 60_000, what: "warm-up" });
        for (const id of warm.splice(0)) pids.add((await ds[0].client.call("jobsGet", { id })).job.result.pid);
        const missing = ds.filter((d) => !pids.has(d.pid));
        if (missing.length === 0) break;
        if (round > 50) throw new Error(`daemon(s) ${missing.map((d) => d.pid).join(", ")} ran none of the warm-up jobs`);
        for (const d of missing) warm.push(await stamp(d));
      }
      // Across nodes: A (ds[0]) takes every enqueue but runs none of them (so-stamp paused on A
      // only), so each job is started by another daemon, which learns of it from the database.
      if (k > 1) await ds[0].client.call("queuePause", { type: "so-stamp" });
      const sent = [];
      for (let i = 0; i < LAT; i++) {
        const d = k > 1 ? ds[0] : ds[i % k];
        const t0 = wallNow();
        const { job } = await d.client.call("jobsEnqueue", { type: "so-stamp" });
        sent.push({ id: job.id, t0, pid: d.pid });
        if (i < LAT - 1) await sleep(GAP);
      }
      await until(() => drained(ds[k > 1 ? 1 : 0].client), { timeoutMs: 120_000, what: "latency jobs" });
      const lat = [];
      let across = 0;
      for (const s of sent) {
        const { job } = await ds[0].client.call("jobsGet", { id: s.id });
        lat.push(job.result.at - s.t0);
        if (job.result.pid !== s.pid) across++;
      }
      return { lat, across };
    } finally {
      await stopAll(ds);
    }
  } finally {
    await dropDb(db);
  }
}

const readLines = (file) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

/**
 * Failover after `kind` ("kill" or "blackhole") of the daemon running a job, F_RUNS times:
 * ms from the fault to the start of the job's next attempt (null: not within F_TIMEOUT).
 */
async function twFailover(k, kind) {
  const db = await freshDb("tw");
  const dir = tempDir("tw-bench-so-ledger-");
  const ledger = join(dir, "ledger.jsonl");
  const homes = Array.from({ length: k }, () => tempDir("tw-bench-so-"));
  const proxies = [];
  for (let i = 0; i < k; i++) proxies.push(await startFaultProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) }));
  let ds = [];
  const restart = async (i, deadline) => {
    for (;;) {
      try {
        ds[i] = await daemon(db.url, { home: homes[i], proxy: proxies[i] });
        return true;
      } catch (err) {
        if (!(err instanceof Refused) || Date.now() > deadline) {
          if (err instanceof Refused) return false;
          throw err;
        }
        await sleep(50);
      }
    }
  };
  const out = { ms: [], afterReady: [], notes: [] };
  try {
    ds = await daemons(db.url, k, { homes, proxies });
    for (let run = 0; run < F_RUNS; run++) {
      const { job } = await ds[0].client.call("jobsEnqueue", { type: "ledger", payload: { ms: 600_000, tickMs: 50, ledger }, maxAttempts: 20 });
      const first = await until(() => readLines(ledger).find((l) => l.job === job.id && l.event === "start"), { timeoutMs: 30_000, what: "the job to start" });
      const x = ds.findIndex((d) => d.pid === first.pid);
      if (x < 0) throw new Error(`job ${job.id} started in pid ${first.pid}, not a daemon of this bench`);
      const t0 = wallNow();
      let readyAt = null;
      const deadline = Date.now() + F_TIMEOUT;
      if (kind === "kill") {
        process.kill(ds[x].pid, "SIGKILL");
        await ds[x].stop({ keepHome: true });
        if (k === 1 && (await restart(x, deadline))) readyAt = wallNow();
      } else if (k === 1) {
        // Partitioned, then gone: its sessions stay open on the server; a new process on a
        // working network (new connections through the proxy are forwarded) takes over.
        for (const c of proxies[x].connections()) c.blackhole();
        process.kill(ds[x].pid, "SIGKILL");
        await ds[x].stop({ keepHome: true });
        if (await restart(x, deadline)) readyAt = wallNow();
        else out.notes.push(`run ${run + 1}: the restarted daemon was refused for ${F_TIMEOUT / 1000} s (the partitioned daemon's sessions still hold the database on the server)`);
      } else {
        proxies[x].blackhole();
      }
      let next = null;
      try {
        next = await until(() => readLines(ledger).find((l) => l.job === job.id && l.event === "start" && l.attempt > first.attempt), {
          timeoutMs: Math.max(100, deadline - Date.now()),
          intervalMs: 5,
          what: "the next attempt",
        });
      } catch {
        // not within the timeout
      }
      out.ms.push(next ? next.at - t0 : null);
      if (next && readyAt !== null) out.afterReady.push(next.at - readyAt);
      log(`  teamwork ${k} daemon(s), ${kind}, run ${run + 1}: ${next ? `${Math.round(next.at - t0)} ms${readyAt !== null ? ` (${Math.round(next.at - readyAt)} ms after the restarted daemon answered)` : ""}` : `not resumed within ${F_TIMEOUT} ms`}`);
      // Back to k working daemons, the job cancelled.
      for (const p of proxies) {
        p.heal();
        for (const c of p.connections()) c.heal();
      }
      for (let i = 0; i < k; i++) {
        let ok = false;
        try {
          ok = (await ds[i].client.call("health", {})).pid === ds[i].pid;
        } catch {
          ok = false;
        }
        if (!ok) {
          await ds[i].stop({ keepHome: true });
          if (!(await restart(i, Date.now() + 30_000))) throw new Error(`daemon ${i} could not be started again`);
        }
      }
      // Cancelled through the daemon running it (a cancel of a job running on another node is
      // refused by this build), whichever that is now; tried again while it moves.
      await until(
        async () => {
          for (const d of ds) {
            try {
              await d.client.call("jobsCancel", { id: job.id });
            } catch {
              // running elsewhere, or already cancelled
            }
          }
          return (await ds[0].client.call("jobsGet", { id: job.id })).job.status === "cancelled";
        },
        { timeoutMs: 60_000, intervalMs: 200, what: "the job to be cancelled" },
      );
      if (next === null) break; // a timeout is not repeated: the figure is "more than the timeout"
    }
    return out;
  } finally {
    await stopAll(ds);
    for (const p of proxies) await p.close();
    await dropDb(db);
  }
}

// ---- graphile-worker ----------------------------------------------------------------------

const quiet = new Logger(() => () => {});
let gwDb;
async function gwQueue() {
  const c = new pg.Client({ connectionString: gwDb.url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${gw.SCHEMA} CASCADE`);
  await c.end();
  const utils = await makeWorkerUtils({ connectionString: gwDb.url, schema: gw.SCHEMA, logger: quiet });
  await utils.migrate();
  return utils;
}
function forkChild(file, args) {
  const child = fork(file, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
  children.add(child);
  const exit = new Promise((r) => child.on("exit", () => (children.delete(child), r())));
  return { child, exit };
}
/** peers/worker.mjs running graphile-worker's runner (the same worker bench/run.mjs measures). */
function gwWorker(concurrency, connectionString = gwDb.url) {
  const { child, exit } = forkChild(PEER_WORKER, ["graphile-worker", JSON.stringify({ connectionString }), String(concurrency)]);
  const w = { child, count: 0, starts: new Map() };
  w.ready = new Promise((resolve, reject) => {
    child.on("message", (m) => m.t === "ready" && resolve());
    exit.then(() => reject(new Error("graphile-worker worker exited before it was ready")));
  });
  w.running = new Promise((resolve) => child.on("message", (m) => m.t === "running" && resolve()));
  child.on("message", (m) => {
    if (m.t === "count") w.count = m.count;
    else if (m.t === "start") w.starts.set(m.i, m.at);
  });
  w.stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.send({ t: "stop" });
    await withTimeout(exit, 15_000, "graphile-worker stop").catch(async () => {
      child.kill("SIGKILL");
      await exit;
    });
  };
  return w;
}

async function gwThroughput(k) {
  const utils = await gwQueue();
  const workers = [];
  try {
    for (let i = 0; i < N; i += BATCH) await utils.addJobs(Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => ({ identifier: "bench", payload: { i: i + j } })));
    for (let i = 0; i < k; i++) workers.push(gwWorker(gw.BEST_CONCURRENCY));
    await withTimeout(Promise.all(workers.map((w) => w.ready)), 60_000, "graphile-worker workers ready");
    const t = performance.now();
    for (const w of workers) w.child.send({ t: "go", report: false });
    await until(() => workers.reduce((s, w) => s + w.count, 0) >= N, { timeoutMs: 600_000, intervalMs: 2, what: "graphile-worker to process the jobs" });
    await until(async () => (await utils.withPgClient((c) => c.query(`SELECT count(*)::int AS n FROM ${gw.SCHEMA}._private_jobs`))).rows[0].n === 0, { timeoutMs: 60_000, intervalMs: 2, what: "graphile-worker's queue to drain" });
    return N / ((performance.now() - t) / 1000);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await utils.release();
  }
}

async function gwLatency(k) {
  const utils = await gwQueue();
  const workers = [];
  try {
    for (let i = 0; i < k; i++) workers.push(gwWorker(3));
    await withTimeout(Promise.all(workers.map((w) => w.ready)), 60_000, "graphile-worker workers ready");
    for (const w of workers) w.child.send({ t: "go", report: true });
    await Promise.all(workers.map((w) => w.running));
    await sleep(300);
    const started = (i) => workers.find((w) => w.starts.has(i))?.starts.get(i);
    for (let i = 0; i < WARM; i++) {
      await utils.addJob("bench", { i });
      await sleep(GAP);
    }
    await until(() => Array.from({ length: WARM }, (_, i) => started(i)).every((x) => x !== undefined), { timeoutMs: 60_000, what: "warm-up" });
    const sent = [];
    for (let i = 0; i < LAT; i++) {
      const t0 = wallNow();
      await utils.addJob("bench", { i: WARM + i });
      sent.push(t0);
      if (i < LAT - 1) await sleep(GAP);
    }
    await until(() => sent.every((_, i) => started(WARM + i) !== undefined), { timeoutMs: 60_000, what: "latency jobs" });
    return { lat: sent.map((t0, i) => started(WARM + i) - t0), across: null };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await utils.release();
  }
}

/** As twFailover, for graphile-worker's workers (a "hold" task of 10 minutes). */
async function gwFailover(k, kind) {
  const utils = await gwQueue();
  const proxies = [];
  for (let i = 0; i < k; i++) proxies.push(await startFaultProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) }));
  const workers = [];
  const starts = [];
  const spawnHold = (i) => {
    const { child, exit } = forkChild(GW_HOLD, [proxies[i].urlThrough(gwDb.url), gw.SCHEMA]);
    child.on("message", (m) => m.t === "start" && starts.push(m));
    const w = { child, exit, pid: child.pid, running: new Promise((r) => child.on("message", (m) => m.t === "running" && r())) };
    workers[i] = w;
    return w;
  };
  const out = { ms: [], afterReady: [], notes: [] };
  try {
    for (let i = 0; i < k; i++) spawnHold(i);
    await withTimeout(Promise.all(workers.map((w) => w.running)), 60_000, "graphile-worker hold workers");
    for (let run = 0; run < GW_F_RUNS; run++) {
      const job = await utils.addJob("hold", { ms: 600_000 }, { maxAttempts: 20 });
      const id = String(job.id);
      const first = await until(() => starts.find((s) => s.id === id), { timeoutMs: 30_000, what: "the hold job to start" });
      const x = workers.findIndex((w) => w.pid === first.pid);
      const t0 = wallNow();
      let readyAt = null;
      if (kind === "blackhole" && k > 1) proxies[x].blackhole();
      else {
        if (kind === "blackhole") for (const c of proxies[x].connections()) c.blackhole();
        workers[x].child.kill("SIGKILL");
        await workers[x].exit;
        if (k === 1) {
          await spawnHold(x).running;
          readyAt = wallNow();
        }
      }
      let next = null;
      try {
        next = await until(() => starts.find((s) => s.id === id && s.attempt > first.attempt), { timeoutMs: F_TIMEOUT, intervalMs: 5, what: "the next attempt" });
      } catch {
        // not within the timeout
      }
      out.ms.push(next ? next.at - t0 : null);
      if (next && readyAt !== null) out.afterReady.push(next.at - readyAt);
      log(`  graphile-worker ${k} worker(s), ${kind}, run ${run + 1}: ${next ? `${Math.round(next.at - t0)} ms` : `not resumed within ${F_TIMEOUT} ms`}`);
      for (const p of proxies) {
        p.heal();
        for (const c of p.connections()) c.heal();
      }
      if (next === null) break;
    }
    return out;
  } finally {
    for (const w of workers) w?.child.kill("SIGKILL");
    await Promise.all(workers.map((w) => w?.exit));
    for (const p of proxies) await p.close();
    await utils.release();
  }
}

// ---- the run ------------------------------------------------------------------------------

const results = { teamwork: {}, "graphile-worker": {} };
const refusals = {};
const started = new Date();
log(`scale-out bench: N=${N}, runs=${RUNS}, latency ${LAT} jobs ${GAP} ms apart, nodes ${NODES.join(",")}, teamwork concurrency ${CONC} per daemon, graphile-worker ${gw.BEST_CONCURRENCY} per worker (its best; 3 in latency)`);
log(`PostgreSQL ${server.v}: fsync=${server.fsync}, synchronous_commit=${server.sc}, shared_buffers=${server.sb}`);

try {
  if (ONLY.has("graphile-worker")) gwDb = await freshDb("gw");
  for (const k of NODES) {
    for (const sys of ["teamwork", "graphile-worker"]) {
      if (!ONLY.has(sys)) continue;
      const r = (results[sys][k] = { throughput: [], latency: null, failover: {} });
      if (sys === "teamwork" && refusals.teamwork) {
        refusals[`teamwork-${k}`] = refusals.teamwork;
        r.refused = refusals.teamwork;
        log(`teamwork with ${k} daemons: skipped (${refusals.teamwork})`);
        continue;
      }
      try {
        for (let run = 0; run < RUNS; run++) {
          if (sys === "teamwork") {
            const { rate, profile } = await twThroughput(k);
            r.throughput.push(rate);
            (r.profile ??= []).push(profile);
            log(`  ${sys} ×${k} throughput run ${run + 1}: ${fmt(rate)} jobs/s (${profileText(profile)})`);
          } else {
            const rate = await gwThroughput(k);
            r.throughput.push(rate);
            log(`  ${sys} ×${k} throughput run ${run + 1}: ${fmt(rate)} jobs/s`);
          }
        }
        const l = sys === "teamwork" ? await twLatency(k) : await gwLatency(k);
        r.latency = { p50: pct(l.lat, 50), p90: pct(l.lat, 90), p99: pct(l.lat, 99), max: Math.max(...l.lat), across: l.across, count: l.lat.length };
        log(`  ${sys} ×${k} latency: p50 ${fmt(r.latency.p50)} ms, p99 ${fmt(r.latency.p99)} ms${l.across === null ? "" : `, ${l.across} of ${l.lat.length} started on another daemon than the one that took them`}`);
        if (!flags["skip-failover"]) {
          for (const kind of ["kill", "blackhole"]) r.failover[kind] = sys === "teamwork" ? await twFailover(k, kind) : await gwFailover(k, kind);
        }
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        r.refused = `a second daemon on one database is refused by this build: exit 10, daemon.database_taken (one daemon per PostgreSQL database, until nodes land)`;
        refusals.teamwork = r.refused;
        log(`teamwork with ${k} daemons: skipped (${r.refused})`);
      }
    }
  }
} finally {
  await cleanup();
  await admin.end().catch(() => {});
}

// ---- the report ---------------------------------------------------------------------------

const ms = (v) => (v === null || v === undefined ? "–" : `${fmt(v)} ms`);
const failCell = (f) => {
  if (!f) return "–";
  const got = f.ms.filter((x) => x !== null);
  const timedOut = f.ms.length - got.length;
  if (got.length === 0) return `> ${F_TIMEOUT / 1000} s (not resumed)`;
  const c = `${cell(got)} ms${f.ms.length > 1 ? ` (${got.length} runs)` : ""}`;
  return timedOut ? `${c}; ${timedOut} run(s) > ${F_TIMEOUT / 1000} s` : c;
};
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–");
const lines = [];
lines.push(`# Scale-out on PostgreSQL — ${started.toISOString().slice(0, 10)}`, "");
lines.push(`\`node bench/scale-out.mjs --n ${N} --runs ${RUNS} --latency ${LAT} --nodes ${NODES.join(",")} --failover-runs ${F_RUNS}\``, "");
lines.push(
  `Machine: ${cpus().length} × ${cpus()[0]?.model?.trim() ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}. ` +
    `PostgreSQL ${server.v} on ${target.host} (fsync=${server.fsync}, synchronous_commit=${server.sc}, shared_buffers=${server.sb}); every system on a database of its own on that server. ` +
    `teamwork: durability "full" (synchronous_commit on), concurrency ${CONC} per daemon, each daemon its own process on its own home. graphile-worker ${version("graphile-worker")}: concurrency ${gw.BEST_CONCURRENCY} per worker process (its best, bench/concurrency.mjs) for throughput, 3 for latency, its defaults otherwise.`,
  "",
);
lines.push("## Throughput: N no-op jobs queued, then drained (jobs/s, median (min–max) of the runs)", "");
lines.push("| nodes | teamwork | graphile-worker | teamwork ÷ graphile-worker |", "|---|---|---|---|");
for (const k of NODES) {
  const t = results.teamwork[k];
  const g = results["graphile-worker"][k];
  lines.push(`| ${k} | ${t?.refused ? "refused (one daemon per database)" : cell(t?.throughput)} | ${cell(g?.throughput)} | ${t?.refused ? "–" : ratio(median(t?.throughput ?? []), median(g?.throughput ?? []))} |`);
}
lines.push("", "Where a teamwork throughput run's time went (each run; CPU seconds from /proc, the server's counters with track_functions = pl):", "");
for (const k of NODES) for (const [i, p] of (results.teamwork[k]?.profile ?? []).entries()) lines.push(`- ${k} daemon(s), run ${i + 1}: ${profileText(p)}`);
lines.push("", `## Enqueue → start, one job every ${GAP} ms (${LAT} jobs after ${WARM} warm-up)`, "");
lines.push("With 2 or more teamwork daemons every job is enqueued through daemon A, whose job type is paused on A only: another daemon starts it (across nodes). graphile-worker's jobs are added by a separate client; any worker takes them.", "");
lines.push("| nodes | teamwork p50 | p99 | started on another daemon | graphile-worker p50 | p99 | p50 ratio (gw ÷ teamwork) |", "|---|---|---|---|---|---|---|");
for (const k of NODES) {
  const t = results.teamwork[k]?.latency;
  const g = results["graphile-worker"][k]?.latency;
  lines.push(`| ${k} | ${results.teamwork[k]?.refused ? "refused" : ms(t?.p50)} | ${ms(t?.p99)} | ${t ? `${t.across} of ${t.count}` : "–"} | ${ms(g?.p50)} | ${ms(g?.p99)} | ${t && g ? ratio(g.p50, t.p50) : "–"} |`);
}
if (!flags["skip-failover"]) {
  lines.push("", `## Failover: fault → the job's next attempt starts (median (min–max) of ${F_RUNS} runs for teamwork, ${GW_F_RUNS} for graphile-worker; a run past ${F_TIMEOUT / 1000} s is not repeated)`, "");
  lines.push("With one node the process is restarted at once (a supervisor's restart); the time includes its start-up. After a blackhole with one node, the partitioned process is killed and its sessions stay open on the server.", "");
  lines.push("| nodes | teamwork kill -9 | teamwork blackhole | graphile-worker kill -9 | graphile-worker blackhole |", "|---|---|---|---|---|");
  for (const k of NODES) {
    const t = results.teamwork[k];
    const g = results["graphile-worker"][k];
    const tk = t?.refused ? "refused" : failCell(t?.failover?.kill);
    const tb = t?.refused ? "refused" : failCell(t?.failover?.blackhole);
    lines.push(`| ${k} | ${tk} | ${tb} | ${failCell(g?.failover?.kill)} | ${failCell(g?.failover?.blackhole)} |`);
  }
  const notes = NODES.flatMap((k) => [...(results.teamwork[k]?.failover?.kill?.notes ?? []), ...(results.teamwork[k]?.failover?.blackhole?.notes ?? [])].map((n) => `- teamwork, ${k} node(s): ${n}`));
  const after = NODES.map((k) => results.teamwork[k]?.failover?.kill?.afterReady).find((a) => a?.length);
  if (after) notes.push(`- teamwork, 1 node, kill -9: the restarted daemon started the job ${cell(after)} ms after it answered /health.`);
  notes.push(`- graphile-worker unlocks a job whose worker died after 4 hours (its default); with several workers the job waits as long.`);
  lines.push("", ...notes);
}
if (Object.keys(refusals).length) lines.push("", `Refused: ${refusals.teamwork}`);
const md = lines.join("\n") + "\n";
console.log(md);
if (!flags["no-save"]) {
  const dir = join(here, "results");
  mkdirSync(dir, { recursive: true });
  // --label keeps a second run of one day beside the first (scale-out-<date>-<label>).
  const stamp = `${started.toISOString().slice(0, 10)}${flags.label ? `-${flags.label.replace(/[^a-z0-9-]/gi, "-")}` : ""}`;
  writeFileSync(join(dir, `scale-out-${stamp}.json`), JSON.stringify({ started, flags, server, results, refusals }, null, 2));
  writeFileSync(join(dir, `scale-out-${stamp}.md`), md);
  log(`written: bench/results/scale-out-${stamp}.md and .json`);
}
process.exit(0);
