// `npm run bench`: every workload against teamwork and, in the same run, against peers
// (plainjob on SQLite, BullMQ on the local Redis). Each figure is the median of --runs runs
// with min–max; teamwork's best figure is also given as a ratio to the best peer.
// Results: bench/results/<date>.json, <date>.md and latest.md. Not part of `npm test`.
//
//   node bench/run.mjs [--n 20000] [--runs 3] [--quick] [--only teamwork,plainjob,bullmq]

import { fork } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTeamwork } from "./teamwork.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
if (!existsSync(join(here, "node_modules", "plainjob"))) {
  console.error("The peers are not installed: run `npm install --prefix bench` first.");
  process.exit(2);
}
const require = createRequire(join(here, "package.json"));
const Database = require("better-sqlite3");

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const quick = args.includes("--quick");
const N = Number(flag("n", quick ? 2000 : 20000));
const N1 = Math.min(N, quick ? 1000 : 5000); // one-by-one enqueues
const RUNS = Number(flag("runs", quick ? 1 : 3));
const LAT = quick ? 100 : 500;
const only = flag("only", "teamwork,plainjob,bullmq").split(",");
const REDIS = "127.0.0.1:6379";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const median = (xs) => pct(xs, 50);
const hwm = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
async function until(cond, timeoutMs = 300_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(10);
  }
}

// ---- systems: each exposes the same operations -------------------------------------

async function teamwork(durability) {
  return {
    name: `teamwork (${durability})`,
    settings: durability === "full" ? "SQLite WAL, synchronous=FULL: fsync before every ack" : "SQLite WAL, synchronous=NORMAL: no fsync (safe against a daemon crash)",
    async oneByOne(n) {
      const tw = await startTeamwork({ durability });
      await tw.client.call("queuePause", {});
      const t = performance.now();
      for (let i = 0; i < n; i++) await tw.client.call("jobsEnqueue", { type: "bench-noop", payload: { i } });
      const rate = n / ((performance.now() - t) / 1000);
      await tw.stop();
      return rate;
    },
    async bulk(n) {
      const tw = await startTeamwork({ durability });
      await tw.client.call("queuePause", {});
      const t = performance.now();
      for (let i = 0; i < n; i += 1000) await tw.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ type: "bench-noop", payload: { i: i + k } })) });
      const rate = n / ((performance.now() - t) / 1000);
      await tw.stop();
      return rate;
    },
    async process(n, concurrency) {
      const tw = await startTeamwork({ durability, concurrency });
      await tw.client.call("queuePause", {});
      for (let i = 0; i < n; i += 1000) await tw.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ type: "bench-noop", payload: { i: i + k } })) });
      const t = performance.now();
      await tw.client.call("queueResume", {});
      await until(async () => (await tw.client.call("daemonStatus", {})).counts.jobs.complete >= n);
      const rate = n / ((performance.now() - t) / 1000);
      const rss = hwm(tw.pid);
      await tw.stop();
      return { rate, rss };
    },
    async latency(count) {
      const tw = await startTeamwork({ durability });
      await tw.client.call("jobsEnqueue", { type: "bench-noop" }); // warm the worker
      await sleep(300);
      const sent = new Map();
      const lat = [];
      const stream = tw.client.stream("eventsStream", {}, (e) => {
        if (e.type === "job:status" && e.data.job.status === "running" && sent.has(e.data.job.id)) lat.push(performance.now() - sent.get(e.data.job.id));
      });
      await stream.opened;
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        const { job } = await tw.client.call("jobsEnqueue", { type: "bench-noop" });
        sent.set(job.id, t0);
        await sleep(5);
      }
      await until(() => lat.length >= count, 10_000).catch(() => {});
      stream.close();
      await tw.stop();
      return lat;
    },
    async idleRss() {
      const tw = await startTeamwork({ durability });
      await sleep(500);
      const rss = hwm(tw.pid);
      await tw.stop();
      return rss;
    },
  };
}

function spawnWorker(system, target, concurrency) {
  const child = fork(join(here, "peer-worker.mjs"), [system, target, String(concurrency)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = new Promise((r) => child.on("message", (m) => m.t === "ready" && r()));
  return { child, ready, stop: () => new Promise((r) => { child.on("exit", r); child.send({ t: "stop" }); setTimeout(() => child.kill("SIGKILL"), 5000).unref(); }) };
}

async function plainjob() {
  const { better, defineQueue, JobStatus } = require("plainjob");
  const open = () => {
    const dir = mkdtempSync(join(tmpdir(), "pj-bench-"));
    const path = join(dir, "queue.db");
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    const queue = defineQueue({ connection: better(db), logger: { info() {}, warn() {}, error() {}, debug() {} } });
    return { dir, path, queue, close: () => { queue.close(); rmSync(dir, { recursive: true, force: true }); } };
  };
  return {
    name: "plainjob",
    settings: "better-sqlite3; plainjob sets WAL and synchronous=NORMAL (no fsync per commit); enqueue in-process and synchronous, worker in its own process",
    async oneByOne(n) {
      const q = open();
      const t = performance.now();
      for (let i = 0; i < n; i++) q.queue.add("bench", { i });
      const rate = n / ((performance.now() - t) / 1000);
      q.close();
      return rate;
    },
    async bulk(n) {
      const q = open();
      const t = performance.now();
      for (let i = 0; i < n; i += 1000) q.queue.addMany("bench", Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ i: i + k })));
      const rate = n / ((performance.now() - t) / 1000);
      q.close();
      return rate;
    },
    async process(n, concurrency) {
      const q = open();
      for (let i = 0; i < n; i += 1000) q.queue.addMany("bench", Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ i: i + k })));
      const w = spawnWorker("plainjob", q.path, concurrency);
      await w.ready;
      const t = performance.now();
      w.child.send({ t: "go" });
      await until(() => q.queue.countJobs({ status: JobStatus.Done }) >= n);
      const rate = n / ((performance.now() - t) / 1000);
      const rss = hwm(w.child.pid);
      await w.stop();
      q.close();
      return { rate, rss };
    },
    async latency(count) {
      const q = open();
      const w = spawnWorker("plainjob", q.path, 1);
      await w.ready;
      const starts = new Map();
      w.child.on("message", (m) => m.t === "start" && starts.set(m.id, m.at));
      w.child.send({ t: "go", reportStarts: true });
      const sent = new Map();
      for (let i = 0; i < count; i++) {
        sent.set(i, performance.timeOrigin + performance.now());
        q.queue.add("bench", { i });
        await sleep(5);
      }
      await until(() => starts.size >= count, 10_000).catch(() => {});
      await w.stop();
      q.close();
      return [...starts].map(([i, at]) => at - sent.get(i));
    },
  };
}

async function bullmq() {
  const { Queue } = require("bullmq");
  const [host, port] = REDIS.split(":");
  const connection = { host, port: Number(port) };
  let seq = 0;
  const open = async () => {
    const name = `tw-bench-${process.pid}-${seq++}`;
    const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true } });
    await queue.waitUntilReady();
    return { name, queue, close: async () => { await queue.obliterate({ force: true }); await queue.close(); } };
  };
  // Reachable?
  const probe = await open().catch(() => null);
  if (!probe) return null;
  await probe.close();
  return {
    name: "BullMQ",
    settings: "Redis 7 on loopback as configured here (no AOF, no RDB: nothing is fsync'd); worker in its own process",
    async oneByOne(n) {
      const q = await open();
      const t = performance.now();
      for (let i = 0; i < n; i++) await q.queue.add("bench", { i });
      const rate = n / ((performance.now() - t) / 1000);
      await q.close();
      return rate;
    },
    async bulk(n) {
      const q = await open();
      const t = performance.now();
      for (let i = 0; i < n; i += 1000) await q.queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: "bench", data: { i: i + k } })));
      const rate = n / ((performance.now() - t) / 1000);
      await q.close();
      return rate;
    },
    async process(n, concurrency) {
      const q = await open();
      for (let i = 0; i < n; i += 1000) await q.queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: "bench", data: { i: i + k } })));
      const w = spawnWorker("bullmq", REDIS, concurrency);
      await w.ready;
      const t = performance.now();
      w.child.send({ t: "go", queue: q.name });
      await until(async () => {
        const c = await q.queue.getJobCounts("waiting", "active", "delayed", "prioritized");
        return c.waiting + c.active + c.delayed + c.prioritized === 0;
      });
      const rate = n / ((performance.now() - t) / 1000);
      const rss = hwm(w.child.pid);
      await w.stop();
      await q.close();
      return { rate, rss };
    },
    async latency(count) {
      const q = await open();
      const w = spawnWorker("bullmq", REDIS, 1);
      await w.ready;
      const starts = new Map();
      w.child.on("message", (m) => m.t === "start" && starts.set(m.id, m.at));
      w.child.send({ t: "go", queue: q.name, reportStarts: true });
      await sleep(300);
      const sent = new Map();
      for (let i = 0; i < count; i++) {
        sent.set(i, performance.timeOrigin + performance.now());
        await q.queue.add("bench", { i });
        await sleep(5);
      }
      await until(() => starts.size >= count, 10_000).catch(() => {});
      await w.stop();
      await q.close();
      return [...starts].map(([i, at]) => at - sent.get(i));
    },
  };
}

// ---- the run -----------------------------------------------------------------------

function fsyncBound() {
  const dir = mkdtempSync(join(tmpdir(), "fsync-"));
  const db = new Database(join(dir, "f.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE t (x)");
  const s = db.prepare("INSERT INTO t VALUES (?)");
  const t = performance.now();
  for (let i = 0; i < 1000; i++) s.run(i);
  const ms = (performance.now() - t) / 1000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return 1000 / ms; // commits per second
}

const systems = [];
const notes = [];
if (only.includes("teamwork")) systems.push(await teamwork("full"), await teamwork("process"));
if (only.includes("plainjob")) systems.push(await plainjob());
if (only.includes("bullmq")) {
  const b = await bullmq();
  if (b) systems.push(b);
  else notes.push(`BullMQ skipped: Redis at ${REDIS} is not reachable.`);
}
notes.push("graphile-worker / pg-boss: not run yet (PostgreSQL peers are the next step of the bench).");

const results = {};
const record = (workload, system, value) => ((results[workload] ??= {})[system] ??= []).push(value);
const fsync = [];
for (let run = 0; run < RUNS; run++) {
  fsync.push(fsyncBound());
  for (const s of systems) {
    process.stderr.write(`run ${run + 1}/${RUNS}: ${s.name}\n`);
    record("A1 enqueue one by one (jobs/s)", s.name, await s.oneByOne(N1));
    record("A2 enqueue in batches of 1,000 (jobs/s)", s.name, await s.bulk(N));
    const c1 = await s.process(N, 1);
    record("B1 process no-ops, concurrency 1 (jobs/s)", s.name, c1.rate);
    const c3 = await s.process(N, 3);
    record("B3 process no-ops, concurrency 3 (jobs/s)", s.name, c3.rate);
    record("D peak RSS of the worker process during B3 (MiB)", s.name, c3.rss);
    const lat = await s.latency(LAT);
    record("C enqueue→start p50 (ms)", s.name, pct(lat, 50));
    record("C enqueue→start p95 (ms)", s.name, pct(lat, 95));
    record("C enqueue→start p99 (ms)", s.name, pct(lat, 99));
    if (s.idleRss) record("D idle RSS of the daemon (MiB)", s.name, await s.idleRss());
  }
}

const lowerIsBetter = (w) => /ms\)|MiB\)/.test(w);
const fmt = (v) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(v >= 10 ? 1 : 2));
const names = systems.map((s) => s.name);
const lines = [
  `| workload | ${names.join(" | ")} | teamwork vs best peer |`,
  `|---|${names.map(() => "---:").join("|")}|---:|`,
];
for (const [w, bySystem] of Object.entries(results)) {
  const med = Object.fromEntries(Object.entries(bySystem).map(([k, v]) => [k, median(v)]));
  const cells = names.map((n) => {
    const v = bySystem[n];
    if (!v) return "–";
    return v.length > 1 ? `${fmt(median(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : fmt(v[0]);
  });
  const tw = names.filter((n) => n.startsWith("teamwork") && med[n] !== undefined).map((n) => med[n]);
  const peers = names.filter((n) => !n.startsWith("teamwork") && med[n] !== undefined).map((n) => med[n]);
  let ratio = "–";
  if (tw.length && peers.length) {
    const best = (xs) => (lowerIsBetter(w) ? Math.min(...xs) : Math.max(...xs));
    const r = lowerIsBetter(w) ? best(peers) / best(tw) : best(tw) / best(peers);
    ratio = `${r.toFixed(2)}×`;
  }
  lines.push(`| ${w} | ${cells.join(" | ")} | ${ratio} |`);
}
const date = new Date().toISOString().slice(0, 10);
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const md = [
  `# teamwork benchmarks, ${date}`,
  "",
  `Machine: ${machine}. N = ${N.toLocaleString("en-US")} (one-by-one: ${N1.toLocaleString("en-US")}), latency over ${LAT} jobs 5 ms apart, ${RUNS} run(s): median (min–max).`,
  `"vs best peer" compares teamwork's better mode with the best peer (above 1× means teamwork is better; for ms and MiB lower is better).`,
  `fsync bound on this disk (SQLite commits/s with synchronous=FULL): ${fmt(median(fsync))}.`,
  "",
  ...lines,
  "",
  "Settings:",
  ...systems.map((s) => `- ${s.name}: ${s.settings}`),
  ...notes.map((n) => `- ${n}`),
  "",
  "Command: `npm run bench` (`node bench/run.mjs`).",
  "",
].join("\n");
mkdirSync(join(here, "results"), { recursive: true });
// A --quick or partial run is a smoke test: it must not replace the published figures.
const stem = quick || only.length < 3 ? `quick-${date}` : date;
writeFileSync(join(here, "results", `${stem}.json`), JSON.stringify({ date, machine, N, N1, RUNS, fsyncPerSecond: fsync, results, settings: Object.fromEntries(systems.map((s) => [s.name, s.settings])), notes }, null, 2));
writeFileSync(join(here, "results", `${stem}.md`), md);
if (stem === date) writeFileSync(join(here, "results", "latest.md"), md);
console.log(md);
process.exit(0);
