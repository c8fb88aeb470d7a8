// Where does the daemon spend its time? Runs one workload against a daemon started with
// `node --cpu-prof`, then prints the functions with the most self time on the daemon's main
// thread, and the same grouped by area (SQLite, HTTP, JSON, teamwork's own modules, …).
//
//   node bench/profile.mjs [--workload enqueue|batch|process|latency] [--durability full|process]
//                          [--n 20000] [--concurrency 3] [--top 25] [--keep]
//
// The .cpuprofile files (main thread and worker threads) are left in bench/results/profiles/
// with --keep (open them in Chrome DevTools → Performance, or speedscope).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTeamwork } from "./teamwork.mjs";
import { sleep, until } from "./lib/util.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const workload = opt("workload", "enqueue");
const durability = opt("durability", "full");
const N = Number(opt("n", workload === "latency" ? 500 : workload === "enqueue" ? 5000 : 20000));
const concurrency = Number(opt("concurrency", 3));
const TOP = Number(opt("top", 25));
const keep = args.includes("--keep");
if (!["enqueue", "batch", "process", "latency"].includes(workload)) {
  console.error("--workload must be enqueue, batch, process or latency");
  process.exit(2);
}

const here = fileURLToPath(new URL(".", import.meta.url));
const profDir = keep ? join(here, "results", "profiles", `${workload}-${durability}-${Date.now()}`) : mkdtempSync(join(tmpdir(), "tw-prof-"));
mkdirSync(profDir, { recursive: true });

const tw = await startTeamwork({ durability, concurrency, execArgv: ["--cpu-prof", `--cpu-prof-dir=${profDir}`] });
const specs = (from, count) => Array.from({ length: count }, (_, k) => ({ type: "bench-noop", payload: { i: from + k } }));
const drained = async () =>
  (await tw.client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await tw.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0;
let t;
try {
  if (workload === "enqueue") {
    await tw.client.call("queuePause", {});
    t = performance.now();
    for (let i = 0; i < N; i++) await tw.client.call("jobsEnqueue", { type: "bench-noop", payload: { i } });
  } else if (workload === "batch") {
    await tw.client.call("queuePause", {});
    t = performance.now();
    for (let i = 0; i < N; i += 1000) await tw.client.call("jobsEnqueueBatchIds", { jobs: specs(i, Math.min(1000, N - i)) });
  } else if (workload === "process") {
    await tw.client.call("queuePause", {});
    for (let i = 0; i < N; i += 1000) await tw.client.call("jobsEnqueueBatchIds", { jobs: specs(i, Math.min(1000, N - i)) });
    t = performance.now();
    await tw.client.call("queueResume", {});
    await until(drained, { timeoutMs: 600_000, what: "the jobs to finish" });
  } else {
    t = performance.now();
    for (let i = 0; i < N; i++) {
      await tw.client.call("jobsEnqueue", { type: "bench-stamp" });
      await sleep(5);
    }
    await until(drained, { timeoutMs: 60_000, what: "the jobs to finish" });
  }
  const s = (performance.now() - t) / 1000;
  console.log(`${workload}, durability ${durability}, ${N} jobs${workload === "process" ? `, concurrency ${concurrency}` : ""}: ${(N / s).toFixed(0)} jobs/s (${s.toFixed(2)} s, under the profiler)`);
} finally {
  await tw.stop();
}

// ---- read the profiles ----------------------------------------------------------------------

const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
if (files.length === 0) {
  console.error(`no profile was written to ${profDir} (did the daemon exit cleanly?)`);
  process.exit(1);
}
// The main thread's profile is the largest; worker threads write their own.
files.sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size);

function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const total = dt.reduce((a, b) => a + b, 0);
  const fns = new Map();
  const areas = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const short = url.replace(/^file:\/\//, "").replace(/^.*\/(dist|node_modules)\//, "$1/");
    const key = `${functionName || "(anonymous)"}  ${short ? `${short}:${lineNumber + 1}` : ""}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = areaOf(functionName, url);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  return { total, fns, areas };
}

function areaOf(fn, url) {
  if (fn === "(idle)") return "idle (waiting: I/O, fsync, timers)";
  if (fn === "(garbage collector)") return "garbage collection";
  if (fn === "(program)") return "V8/native outside JS (incl. SQLite C code and syscalls)";
  if (/better-sqlite3/.test(url)) return "better-sqlite3 (JS side)";
  if (/node:internal\/(http|_http|streams|net|stream_base)|node:(http|net|_http)/.test(url) || /^node:_http/.test(url)) return "node http/net/streams";
  if (/dist\/protocol\//.test(url)) return "teamwork protocol (validation)";
  if (/dist\/daemon\//.test(url)) return "teamwork daemon (server, routes)";
  if (/dist\/queue\//.test(url)) return "teamwork queue (engine, pool, events)";
  if (/dist\/store\//.test(url)) return "teamwork store (SQLite modules)";
  if (/dist\//.test(url)) return "teamwork other";
  if (fn === "stringify" || fn === "parse" || /JSON/.test(fn)) return "JSON";
  if (/^node:/.test(url)) return "other node internals";
  if (url === "") return `native: ${fn}`;
  return "other JS";
}

const pctOf = (us, total) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
for (const [k, f] of files.slice(0, 1).entries()) {
  const { total, fns, areas } = selfTimes(JSON.parse(readFileSync(join(profDir, f), "utf8")));
  console.log(`\n${k === 0 ? "daemon main thread" : "thread"} (${f}): ${(total / 1e6).toFixed(2)} s sampled`);
  console.log("\nby area (self time):");
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`  ${pctOf(us, total)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${a}`);
  console.log(`\ntop ${TOP} functions (self time):`);
  for (const [fn, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`  ${pctOf(us, total)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${fn}`);
}
if (keep) console.log(`\nprofiles kept in ${profDir}`);
else rmSync(profDir, { recursive: true, force: true });
process.exit(0);
