// `npm run bench`: every workload of issue 7 against teamwork (durability "full" and
// "process") and, in the same run, against the peers: plainjob and liteque (SQLite), BullMQ
// (the local Redis) and graphile-worker (the local PostgreSQL). A peer whose service is not
// reachable is skipped with a note. Each figure is the median of the runs with min–max, and
// teamwork's is also given as a ratio to the best peer. Not part of `npm test`.
//
//   node bench/run.mjs [--n 20000] [--runs 3] [--quick] [--only teamwork,bullmq,...]
//                      [--latency 500] [--sporadic 20] [--idle-ms 60000] [--skip-e] ...
//
// Results: bench/results/<date>.json, bench/results/<date>.md and bench/results/latest.md
// (a --quick or --only run writes bench/results/quick-<date>.* instead, git-ignored).
// The peers are the bench's own dependencies (bench/package.json): `npm install --prefix bench`.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const PEERS = ["plainjob", "liteque", "bullmq", "graphile-worker"];
/** Warm-up jobs before C and before the sporadic workload's idle period, not counted. */
const WARM = 20;
const DEPS = ["better-sqlite3", "plainjob", "liteque", "drizzle-orm", "bullmq", "ioredis", "graphile-worker", "pg"];

// ---- flags -------------------------------------------------------------------------------

const USAGE = `usage: node bench/run.mjs [options]   (or: npm run bench -- [options])

  --n N            jobs per workload A (in batches) and B (default 20000)
  --n1 N           jobs enqueued one by one in workload A (default: the smaller of N and 5000;
                   the one-by-one rate is flat, and at a few hundred per second 20,000 would
                   take minutes per system)
  --runs R         runs of each workload; figures are the median with min–max (default 3)
  --quick          smoke test: --n 1000 --runs 1 --latency 100 --sporadic 5 --idle-ms 2000,
                   E with 20,000 jobs and 5,000 tasks (about a minute and a half)
  --only LIST      systems to run, comma-separated: teamwork (both durabilities), teamwork-full,
                   teamwork-process, ${PEERS.join(", ")} (default: all)
  --latency K      jobs of workload C, enqueued 5 ms apart, after ${WARM} warm-up jobs; and of
                   C cold, the same into a fresh daemon / worker with no warm-up (default 500)
  --sporadic S     jobs of the sporadic workload: after ${WARM} warm-up jobs and an idle period,
                   one job every --sporadic-gap-ms; run once per system, not per run, as its
                   idle period is long (default 20; 0 = skip it)
  --idle-ms MS     the sporadic workload's idle period (default 60000: longer than the 30 s
                   after which teamwork's worker pool retired idle workers when issue 16 was
                   filed)
  --sporadic-gap-ms MS  gap between the sporadic jobs (default 1000)
  --budget S       a workload that took longer than S seconds in the first run is not repeated
                   in the later runs (reported as one run, with a note); 0 = always repeat
                   (default 45: liteque's B takes over a minute per run at N=20,000)
  --skip-e         skip workload E (teamwork's CLI, 1M stored jobs, big report)
  --e-jobs M       stored jobs for workload E (default 1000000)
  --e-tasks T      tasks on the report's board for workload E (default 100000)
  --render FILE    re-render FILE.md from a saved FILE.json (no measuring)
  --help           this text`;

const argv = process.argv.slice(2);
const flags = {};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--help" || a === "-h") {
    console.log(USAGE);
    process.exit(0);
  }
  const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
  if (!m) {
    console.error(`unexpected argument "${a}"\n\n${USAGE}`);
    process.exit(2);
  }
  const [, name, inline] = m;
  if (["quick", "skip-e"].includes(name)) flags[name] = true;
  else if (["n", "n1", "runs", "only", "latency", "sporadic", "idle-ms", "sporadic-gap-ms", "budget", "e-jobs", "e-tasks", "render"].includes(name)) {
    const v = inline ?? argv[++i];
    if (v === undefined) {
      console.error(`--${name} needs a value\n\n${USAGE}`);
      process.exit(2);
    }
    flags[name] = v;
  } else {
    console.error(`unknown option --${name}\n\n${USAGE}`);
    process.exit(2);
  }
}
if (flags.render) {
  // Re-renders the Markdown of a saved run (after a change to the report's layout).
  const { renderMarkdown } = await import("./lib/report.mjs");
  const file = flags.render;
  const md = renderMarkdown(JSON.parse(readFileSync(file, "utf8")));
  const out = file.replace(/\.json$/, ".md");
  writeFileSync(out, md);
  // The newest full run's report is also latest.md.
  const dir = join(file, "..");
  const dated = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort();
  const isLatest = dated.length > 0 && join(dir, dated.at(-1)) === join(file);
  if (isLatest) writeFileSync(join(dir, "latest.md"), md);
  console.log(md);
  console.error(`wrote ${out}${isLatest ? ` and ${join(dir, "latest.md")}` : ""}`);
  process.exit(0);
}

const int = (name, fallback, lo = 1) => {
  if (flags[name] === undefined) return fallback;
  const v = Number(String(flags[name]).replace(/[_,]/g, ""));
  if (!Number.isInteger(v) || v < lo) {
    console.error(`--${name} must be a whole number ≥ ${lo}, got "${flags[name]}"`);
    process.exit(2);
  }
  return v;
};
const quick = Boolean(flags.quick);
const N = int("n", quick ? 1000 : 20_000);
const N1 = int("n1", Math.min(N, 5000));
const RUNS = int("runs", quick ? 1 : 3);
const LAT = int("latency", quick ? 100 : 500);
const SPORADIC = int("sporadic", quick ? 5 : 20, 0);
const IDLE_MS = int("idle-ms", quick ? 2000 : 60_000, 0);
const SPORADIC_GAP_MS = int("sporadic-gap-ms", 1000);
const BUDGET_S = int("budget", 45, 0);
const E_JOBS = int("e-jobs", quick ? 20_000 : 1_000_000, 2);
const E_TASKS = int("e-tasks", quick ? 5_000 : 100_000, 2);
const KNOWN = ["teamwork", "teamwork-full", "teamwork-process", ...PEERS, "graphile"];
const only = (flags.only ?? "teamwork," + PEERS.join(",")).split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
for (const o of only) {
  if (!KNOWN.includes(o)) {
    console.error(`--only: unknown system "${o}" (known: ${KNOWN.filter((k) => k !== "graphile").join(", ")})`);
    process.exit(2);
  }
}
const wants = (id) => only.includes(id) || (id.startsWith("teamwork-") && only.includes("teamwork")) || (id === "graphile-worker" && only.includes("graphile"));

// ---- prerequisites -----------------------------------------------------------------------

const missing = DEPS.filter((d) => !existsSync(join(here, "node_modules", d, "package.json")));
if (missing.length) {
  console.error(`The bench's own dependencies are not installed (missing: ${missing.join(", ")}).\nRun \`npm install --prefix bench\` once (it compiles better-sqlite3, about two minutes), then \`npm run bench\` again.`);
  process.exit(2);
}
const sqliteVersion = JSON.parse(readFileSync(join(here, "node_modules", "better-sqlite3", "package.json"), "utf8")).version;
if (!sqliteVersion.startsWith("12.")) {
  console.error(`bench/node_modules has better-sqlite3 ${sqliteVersion}; the bench needs 12.x on Node 20 (13.x crashes). Run \`npm install --prefix bench\`.`);
  process.exit(2);
}
if (!existsSync(join(here, "..", "dist", "daemon", "main.js")) || !existsSync(join(here, "..", "dist", "cli", "bundle.cjs"))) {
  console.error("teamwork is not built (dist/ is missing): run `npm run build` first.");
  process.exit(2);
}

const { teamworkSystem, liveDaemons, CONCURRENCY } = await import("./teamwork.mjs");
const { histogram } = await import("./lib/latency.mjs");
const { peerSystem, liveWorkers } = await import("./lib/peers.mjs");
const { measureFsync } = await import("./lib/fsync.mjs");
const { workloadE } = await import("./teamwork-e.mjs");
const { renderMarkdown, targets } = await import("./lib/report.mjs");
const { fmt, pct } = await import("./lib/util.mjs");

const started = Date.now();
const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));
const clock = () => {
  const s = Math.round((Date.now() - started) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};
const log = (msg) => process.stderr.write(`[${clock()}] ${msg}\n`);
const notes = [];

// ---- cleanup, also on Ctrl-C ---------------------------------------------------------------

const peerModules = {};
async function cleanup() {
  for (const d of [...liveDaemons]) await d.stop({ keepHome: false }).catch(() => {});
  for (const w of [...liveWorkers]) w.kill("SIGKILL");
  if (peerModules.bullmq) {
    const n = await peerModules.bullmq.sweep();
    if (n) log(`removed ${n} leftover BullMQ keys from Redis`);
  }
  if (peerModules["graphile-worker"]) await peerModules["graphile-worker"].dropSchema();
}
// On Ctrl-C: stop the daemons and worker processes at once, so the workload in progress
// fails fast; the main flow then runs no further workload, cleans up and exits 130. A second
// Ctrl-C, or a main flow that does not get there within 15 s, exits after a cleanup anyway.
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: stopping, then cleaning up (temp homes, worker processes, Redis keys, the Postgres schema)…`);
    for (const w of [...liveWorkers]) w.kill("SIGKILL");
    for (const d of [...liveDaemons]) void d.stop().catch(() => {});
    setTimeout(() => cleanup().finally(() => process.exit(130)), 15_000).unref();
  });
}
async function exitIfInterrupted() {
  if (!interrupted) return;
  await cleanup();
  log("interrupted: cleaned up; no results written");
  process.exit(130);
}

// ---- systems -------------------------------------------------------------------------------

const systems = [];
for (const d of ["full", "process"]) if (wants(`teamwork-${d}`)) systems.push(teamworkSystem(d));
for (const id of PEERS) {
  if (!wants(id)) continue;
  const mod = await import(`./peers/${id}.mjs`);
  const why = await mod.probe();
  if (why) {
    notes.push(`${mod.label} skipped: ${why}.`);
    log(`${mod.label} skipped: ${why}`);
    continue;
  }
  peerModules[id] = mod;
  systems.push(peerSystem(mod, 3));
}
if (systems.length === 0) {
  console.error("nothing to run: no selected system is available");
  process.exit(1);
}

// ---- the runs --------------------------------------------------------------------------------

const results = {};
const record = (key, id, v) => {
  if (v === null || v === undefined || !Number.isFinite(v)) return;
  ((results[key] ??= {})[id] ??= []).push(v);
};
const firstRunSeconds = new Map();
async function step(sys, what, run, fn) {
  if (interrupted) return;
  const key = `${sys.id}|${what}`;
  const first = firstRunSeconds.get(key);
  if (run > 0 && BUDGET_S > 0 && first !== undefined && first > BUDGET_S) {
    if (run === 1) notes.push(`${sys.label}, ${what}: ran once, not ${RUNS} times: the first run took ${first.toFixed(first < 10 ? 1 : 0)} s, over the ${BUDGET_S} s budget per workload (\`--budget 0\` repeats it).`);
    log(`  ${sys.label.padEnd(20)} ${what.padEnd(22)} skipped in this run (took ${first.toFixed(first < 10 ? 1 : 0)} s in run 1; --budget ${BUDGET_S})`);
    return;
  }
  const t = performance.now();
  try {
    const v = await fn();
    const seconds = (performance.now() - t) / 1000;
    if (run === 0) firstRunSeconds.set(key, seconds);
    log(`  ${sys.label.padEnd(20)} ${what.padEnd(22)} ${v ?? "n/a"}  (${seconds.toFixed(1)} s)`);
  } catch (err) {
    notes.push(`${sys.label}, ${what}: failed: ${err.message.split("\n")[0]}`);
    log(`  ${sys.label.padEnd(20)} ${what.padEnd(22)} FAILED: ${err.stack ?? err.message}`);
  }
}
const rate = (v) => `${fmt(v)}/s`;
const fsync = [];
/** The latency histograms: latency[workload][system id] = one histogram per run. */
const latency = { C: {}, Ccold: {}, S: {} };
/** The concurrency at which each system's B was best, per run (the row "B at its best"). */
const bBestAt = {};
const showLatency = (h) => `p50 ${fmt(h.p50)} p90 ${fmt(h.p90)} p99 ${fmt(h.p99)} max ${fmt(h.max)} ms (slowest: #${h.slowest[0]?.i}); enqueue acknowledged p50 ${fmt(h.ackP50)} ms`;
/** Runs one latency workload for a system, records its rows and its histogram. */
async function latencyStep(sys, what, run, workload, opts, keys) {
  await step(sys, what, run, async () => {
    const { lat, ack, idleRssMiB } = await sys.latency({ concurrency: CONCURRENCY, ...opts });
    const h = histogram(lat, ack);
    for (const [key, field] of Object.entries(keys)) record(key, sys.id, h[field]);
    if (idleRssMiB !== undefined) record("DidleS", sys.id, idleRssMiB);
    (latency[workload][sys.id] ??= []).push({ run: run + 1, ...h });
    return showLatency(h);
  });
}

log(`bench: N=${N.toLocaleString("en-US")} (one by one: ${N1.toLocaleString("en-US")}), ${RUNS} run(s), C and C cold over ${LAT} jobs, sporadic ${SPORADIC} jobs ${SPORADIC_GAP_MS} ms apart after ${IDLE_MS} ms idle; systems: ${systems.map((s) => s.label).join(", ")}`);
for (let run = 0; run < RUNS; run++) {
  const f = measureFsync();
  fsync.push(f);
  log(`run ${run + 1}/${RUNS}: fsync ${f.fsyncMs.toFixed(3)} ms → bound ${fmt(f.fsyncPerSecond)}/s; SQLite FULL commit ${f.sqliteCommitMs.toFixed(3)} ms`);
  // Rotate the order so that no system always runs first (warm caches) or last.
  const order = systems.map((_, k) => systems[(k + run) % systems.length]);
  for (const sys of order) {
    if (interrupted) break;
    await step(sys, "A one by one", run, async () => {
      const v = await sys.oneByOne(N1);
      record("A1", sys.id, v);
      return rate(v);
    });
    await step(sys, "A batches of 1,000", run, async () => {
      const v = await sys.bulk(N);
      if (v === null) return "no batch API";
      record("A2", sys.id, v);
      return rate(v);
    });
    // B at concurrency 1 and 3 (teamwork's), and a peer also at its best concurrency; each
    // system's best of these in this run is the row "B at its best".
    const b = {};
    await step(sys, "B concurrency 1", run, async () => {
      const r = await sys.process(N, 1);
      b[1] = r.rate;
      record("B1", sys.id, r.rate);
      record("D1", sys.id, r.peakMiB);
      if (!sys.teamwork) record("Didle", sys.id, r.idleMiB);
      return `${rate(r.rate)}, peak ${fmt(r.peakMiB)} MiB`;
    });
    await step(sys, "B pool of 3", run, async () => {
      const r = await sys.process(N, 3);
      b[3] = r.rate;
      record("B3", sys.id, r.rate);
      record("D3", sys.id, r.peakMiB);
      return `${rate(r.rate)}, peak ${fmt(r.peakMiB)} MiB`;
    });
    const best = sys.bestConcurrency;
    if (best !== undefined && b[best] === undefined && ![1, 3].includes(best)) {
      await step(sys, `B concurrency ${best} (best)`, run, async () => {
        const r = await sys.process(N, best);
        b[best] = r.rate;
        return `${rate(r.rate)}, peak ${fmt(r.peakMiB)} MiB`;
      });
    }
    if (best !== undefined) record("Bb", sys.id, b[best]);
    const measured = Object.entries(b).filter(([, v]) => Number.isFinite(v));
    if (measured.length) {
      const [c, v] = measured.reduce((x, y) => (y[1] > x[1] ? y : x));
      record("Bbest", sys.id, v);
      (bBestAt[sys.id] ??= []).push(Number(c));
    }
    await latencyStep(sys, "C latency", run, "C", { count: LAT, gapMs: 5, warm: WARM }, { C50: "p50", C95: "p95", C99: "p99", Cack: "ackP50" });
    await latencyStep(sys, "C cold", run, "Ccold", { count: LAT, gapMs: 5, warm: 0, cold: true }, { Ccold50: "p50", Ccold99: "p99", CcoldMax: "max" });
    if (sys.idle) {
      await step(sys, "D idle", run, async () => {
        const r = await sys.idle();
        record("Didle", sys.id, r.rssMiB);
        return `${fmt(r.rssMiB)} MiB (start ${fmt(r.startMs)} ms)`;
      });
    }
  }
}

// The sporadic workload, once per system (its idle period is long; its SPORADIC jobs are the
// sample), systems one after another so that each one's idle period is really idle.
if (SPORADIC > 0) {
  log(`sporadic: ${WARM} warm-up jobs, ${fmt(IDLE_MS / 1000)} s idle, then ${SPORADIC} jobs ${SPORADIC_GAP_MS} ms apart; about ${fmt(((IDLE_MS + SPORADIC * SPORADIC_GAP_MS) * systems.length) / 60_000)} min in all`);
  for (const sys of systems) {
    if (interrupted) break;
    await latencyStep(sys, "sporadic", 0, "S", { count: SPORADIC, gapMs: SPORADIC_GAP_MS, warm: WARM, idleMs: IDLE_MS }, { S50: "p50", S99: "p99", Smax: "max" });
  }
}

await exitIfInterrupted();
let e;
if (!flags["skip-e"] && !interrupted && (wants("teamwork-full") || wants("teamwork-process"))) {
  const t = performance.now();
  try {
    e = await workloadE({ jobs: E_JOBS, tasks: E_TASKS, cliRuns: quick ? 10 : 20, routeRuns: quick ? 10 : 30, reports: RUNS, log });
    log(`E done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  } catch (err) {
    notes.push(`E failed: ${err.message.split("\n")[0]}`);
    log(`E FAILED: ${err.stack ?? err.message}`);
  }
}

await exitIfInterrupted();
await cleanup();

// ---- report ------------------------------------------------------------------------------

const date = new Date().toISOString().slice(0, 10);
const cpu = cpus();
const machine = `${cpu.length} × ${cpu[0]?.model?.trim() ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}; temp homes and databases on ${process.env.TMPDIR ?? "/tmp"}`;
const command = `node bench/run.mjs${argv.length ? " " + argv.join(" ") : ""}`;
const targetList = targets(results, systems, fsync, e);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);


const json = {
  date,
  machine,
  command,
  minutes: Number(minutes),
  loadAverage: { start: loadAtStart, end: loadavg().map((x) => Number(x.toFixed(2))) },
  params: { N, N1, runs: RUNS, latencyJobs: LAT, warmup: WARM, concurrency: CONCURRENCY, sporadic: { jobs: SPORADIC, gapMs: SPORADIC_GAP_MS, idleMs: IDLE_MS, warmup: WARM }, batch: 1000, eJobs: E_JOBS, eTasks: E_TASKS },
  systems: systems.map((s) => ({ id: s.id, label: s.label, teamwork: Boolean(s.teamwork), bestConcurrency: s.bestConcurrency, settings: s.settings })),
  fsync,
  results,
  latency,
  bBestAt,
  e,
  targets: targetList,
  notes,
};
const md = renderMarkdown(json);
const dir = join(here, "results");
mkdirSync(dir, { recursive: true });
// A --quick or --only run is a smoke test: it never replaces the figures of a full run
// (bench/results/quick-* is git-ignored).
const published = !quick && flags.only === undefined;
const stem = published ? date : `quick-${date}`;
writeFileSync(join(dir, `${stem}.json`), JSON.stringify(json, null, 2) + "\n");
writeFileSync(join(dir, `${stem}.md`), md);
if (published) writeFileSync(join(dir, "latest.md"), md);
console.log(md);
log(`results: bench/results/${stem}.json, bench/results/${stem}.md${published ? ", bench/results/latest.md" : " (a --quick or --only run: latest.md left alone)"}`);
process.exit(0);
