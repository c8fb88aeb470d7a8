// The job queue at the Store level (no daemon, no workers): how fast P processes, each its
// own store handle as a daemon would have, claim and finish jobs on one store. A script that
// prints figures, not a test. Runs on the compiled store (`npm run build`).
//
//   node bench/store-queue.mjs [--store postgres|sqlite] [--procs 1,3] [--n 10000] [--batch 10] [--only drain,flow,drain1,single]
//
// Workloads, each on a fresh store per process count:
//   drain   N jobs enqueued first (1,000 per tick); the processes race to claim `batch` at a
//           time and finish them (one claim, then one tick of finishes), until none is left.
//           claims/s = claim calls per second; jobs/s = jobs completed per second.
//   flow    each process repeats one tick that enqueues `batch` jobs, finishes the jobs its
//           previous tick claimed, and claims `batch` (the engine's group commit), until it
//           has completed N/P jobs. jobs/s = completed per second, all processes together.
//   single  as flow with one job per statement: enqueue tick, claim, finish tick per job
//           (N/10 jobs in all).
// Every workload checks that each job was completed once (attempts = 1), and says so.
//
// PostgreSQL: a database tw_bench_<random> on TEAMWORK_TEST_PG_URL's server (default
// postgres://postgres@127.0.0.1:5432/test), dropped at the end. SQLite: a temp file.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const DIST = new URL("../dist/", import.meta.url);
const { openStore } = await import(new URL("store/index.js", DIST).href);
const { taskEventPolicy } = await import(new URL("board/task-events.js", DIST).href);
const opts = { durability: "process", taskEvents: taskEventPolicy };
const SELF = fileURLToPath(import.meta.url);

const limits = (n) => ({ limit: n, pausedTypes: [], budgets: { any: n }, draws: {}, otherTypes: ["any"] });
const empty = { inserts: [], finishes: [], progress: [], checkpoints: [], logs: [], begins: [], claim: null };
const job = (i) => ({ type: "noop", payload: { i }, runAt: Date.now(), priority: 0, maxAttempts: 3, uniqueKey: null });
const done = (owner) => (j) => ({ id: j.id, attempt: j.attempts, outcome: "complete", result: { by: owner }, running: j });

/** A store call, tried again while busy (nothing was changed). */
async function retrying(call) {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (err?.name !== "StoreError" || err.kind !== "busy") throw err;
    }
  }
}

// ---- child: one process, one store handle ----
if (process.argv[2] === "--child") {
  const [, , , location, workload, owner, batchArg, countArg] = process.argv;
  const batch = Number(batchArg);
  const count = Number(countArg);
  const store = await openStore(JSON.parse(location), opts);
  // Claims on a shared store are for a live node only: one per process, with a lease longer than the run.
  await store.nodes.register({ id: owner, host: "bench", pid: process.pid }, 3_600_000);
  const lines = createInterface({ input: process.stdin });
  console.log("ready");
  for await (const l of lines) if (l.startsWith("go")) break;
  let claims = 0;
  let completed = 0;
  const started = performance.now();
  if (workload === "drain") {
    for (;;) {
      claims++;
      const { claimed } = await retrying(() => store.jobs.claim({ ...limits(batch), owner, now: Date.now() }));
      if (!claimed.length) break;
      const r = await retrying(() => store.jobs.tick({ ...empty, now: Date.now(), owner, finishes: claimed.map(done(owner)) }));
      completed += r.finished.length;
    }
  } else if (workload === "flow") {
    let running = [];
    let enqueued = 0;
    for (;;) {
      const inserts = enqueued < count ? Array.from({ length: Math.min(batch, count - enqueued) }, (_, i) => job(enqueued + i)) : [];
      enqueued += inserts.length;
      claims++;
      const r = await retrying(() => store.jobs.tick({ ...empty, now: Date.now(), owner, inserts, finishes: running.map(done(owner)), claim: limits(batch) }));
      completed += r.finished.length;
      running = r.claimed;
      // Everything enqueued and nothing left to claim (another process may have taken some).
      if (!running.length && enqueued >= count) break;
    }
  } else if (workload === "single") {
    for (let i = 0; i < count; i++) {
      await retrying(() => store.jobs.tick({ ...empty, now: Date.now(), owner, inserts: [job(i)] }));
      claims++;
      const { claimed } = await retrying(() => store.jobs.claim({ ...limits(1), owner, now: Date.now() }));
      if (claimed.length) completed += (await retrying(() => store.jobs.tick({ ...empty, now: Date.now(), owner, finishes: claimed.map(done(owner)) }))).finished.length;
    }
  }
  const ms = performance.now() - started;
  await store.close();
  console.log(JSON.stringify({ claims, completed, ms }));
  lines.close();
  process.exit(0);
}

// ---- parent ----
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const kind = arg("store", "postgres");
const procsList = arg("procs", "1,3").split(",").map(Number);
const N = Number(arg("n", "10000"));
const BATCH = Number(arg("batch", "10"));
const PG_URL = process.env.TEAMWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

async function freshStore() {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "tw-bench-store-"));
    return { location: { kind: "sqlite", path: join(dir, "teamwork.db") }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const pg = (await import("pg")).default;
  const db = `tw_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${db}`);
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  return {
    location: { kind: "postgres", url: u.toString() },
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.end();
    },
  };
}

function child(location, workload, owner, batch, count) {
  const p = spawn(process.execPath, [SELF, "--child", JSON.stringify(location), workload, owner, String(batch), String(count)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: p.stdout });
  let last = "";
  const ready = new Promise((r) => lines.on("line", (l) => (l === "ready" ? r() : (last = l))));
  const result = new Promise((resolve, reject) => p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(last)) : reject(new Error(`child exited ${code}`)))));
  return { ready, result, go: () => p.stdin.write("go\n") };
}

async function run(workload, procs, batch, total) {
  const { location, drop } = await freshStore();
  try {
    const store = await openStore(location, opts);
    if (workload === "drain") {
      for (let i = 0; i < total; i += 1000) await store.jobs.tick({ ...empty, now: Date.now(), owner: "enqueuer", inserts: Array.from({ length: Math.min(1000, total - i) }, (_, k) => job(i + k)) });
    }
    const per = Math.ceil(total / procs);
    const cs = Array.from({ length: procs }, (_, i) => child(location, workload, `P${i + 1}`, batch, per));
    await Promise.all(cs.map((c) => c.ready));
    const t0 = performance.now();
    for (const c of cs) c.go();
    const rs = await Promise.all(cs.map((c) => c.result));
    const wall = performance.now() - t0;
    const counts = await store.jobs.counts();
    const completed = rs.reduce((n, r) => n + r.completed, 0);
    const claims = rs.reduce((n, r) => n + r.claims, 0);
    const all = await store.jobs.list({ status: "complete", limit: completed + 10 });
    const once = all.length === completed && all.every((j) => j.attempts === 1) && counts.running === 0;
    await store.close();
    return { workload, procs, batch, completed, claims, wallMs: wall, jobsPerS: completed / (wall / 1000), claimsPerS: claims / (wall / 1000), once, pending: counts.pending };
  } finally {
    await drop();
  }
}

console.log(`store=${kind} n=${N} batch=${BATCH} procs=${procsList.join(",")} (node ${process.version})`);
console.log("workload  procs  batch  completed  wall s  jobs/s  claims/s  each once");
const only = arg("only", "drain,flow,drain1,single").split(",");
for (const [name, workload, batch, total] of [
  ["drain", "drain", BATCH, N],
  ["flow", "flow", BATCH, N],
  ["drain1", "drain", 1, Math.ceil(N / 5)],
  ["single", "single", 1, Math.ceil(N / 10)],
]) {
  if (!only.includes(name)) continue;
  for (const procs of procsList) {
    const r = await run(workload, procs, batch, total);
    console.log(
      `${r.workload.padEnd(8)}  ${String(r.procs).padStart(5)}  ${String(r.batch).padStart(5)}  ${String(r.completed).padStart(9)}  ${(r.wallMs / 1000).toFixed(2).padStart(6)}  ${Math.round(r.jobsPerS).toString().padStart(6)}  ${Math.round(r.claimsPerS).toString().padStart(8)}  ${r.once ? "yes" : `NO (pending ${r.pending})`}`,
    );
  }
}
