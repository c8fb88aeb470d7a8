// Hostile clients, as a measurement (tests/reliability/hostile-clients.test.ts asserts loose
// bounds; this prints the figures, and with --profile says what blocks the main thread).
// One daemon drains 6,000 jobs while: 3 event readers never read, 50 read everything, 150
// connections sit idle, an RPC client pipelines 300 biggest lists and never reads, 5 HTTP
// bodies arrive a byte every 500 ms, and a client loops over the biggest list. A worker thread
// asks for /health every 50 ms (bench/lib/health-probe.mjs). Prints /health's worst and p99, the daemon's RSS before, at peak
// and after (the clients gone, 2 s later); and how long the daemon's main thread was on a
// core and waited for one during the drain, and for each answer what it did while /health
// waited: its own work (on a core), waiting for a core, or blocked (a disk sync, a wait for
// a GC helper; or the probe's own thread waiting). On 2 shared cores the wall figure is
// mostly the second (measured 2026-12-03, load 6-10: worst 129-427 ms, its own work 19-32).
//
//   npm run build && node bench/hostile.mjs [--calm] [--rounds N] [--profile] [--trace-gc] [--node-flag F ...]
//        [--durability full|process] [--nice N]
//
// --profile runs the daemon under --cpu-prof and lists the main thread's tasks over 20 ms
// with the functions that filled them: what makes /health wait; and how long the engine's
// ticks held it (the time under the engine's tick within one task).
//
// --trace-gc runs the daemon under V8's --trace-gc and sums its collections during the run by
// kind (scavenge, mark-compact): how many, their time, and the longest pauses. --node-flag F
// (repeatable) gives the daemon a V8 flag after the product's own (DAEMON_NODE_FLAGS): the
// later one wins, e.g. --node-flag --max-semi-space-size=4 to try another young generation.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTeamwork } from "./teamwork.mjs";
import { resolvePaths } from "../dist/config/paths.js";
import { peakMiB, pct, resetPeak, rssMiB, sleep, until } from "./lib/util.mjs";
import { healthProbe } from "./lib/health-probe.mjs";

const profile = process.argv.includes("--profile");
/** --calm: the same drain with no hostile client (the baseline: what the drain alone costs /health). */
const calm = process.argv.includes("--calm");
/** --rounds N: drain 6,000 jobs N times with the same clients (memory that only grows is a leak). */
const rounds = Number(process.argv[process.argv.indexOf("--rounds") + 1] ?? 1) || 1;
const traceGc = process.argv.includes("--trace-gc");
const nodeFlags = process.argv.flatMap((a, i) => (process.argv[i - 1] === "--node-flag" ? [a] : []));
/**
 * --nice N: the daemon's main thread at niceness N (e.g. -10, as root) once started: ahead of
 * the other threads of a shared machine for a core, so /health's wait is the daemon's own work.
 */
const niceness = process.argv.includes("--nice") ? Number(process.argv[process.argv.indexOf("--nice") + 1]) : null;
const profDir = profile ? mkdtempSync(join(tmpdir(), "tw-hostile-prof-")) : null;
const tw = await startTeamwork({
  concurrency: 3,
  durability: process.argv.includes("--durability") ? process.argv[process.argv.indexOf("--durability") + 1] : "full",
  execArgv: [...nodeFlags, ...(traceGc ? ["--trace-gc"] : []), ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-interval=200"] : [])],
});
if (niceness !== null) {
  // Linux: a thread's own niceness (setpriority on a tid), so only the main thread's.
  const r = spawnSync("renice", ["-n", String(niceness), "-p", String(tw.pid)], { encoding: "utf8" });
  console.log(r.status === 0 ? `daemon's main thread at niceness ${niceness}` : `renice refused: ${r.stderr.trim()}`);
}
if (nodeFlags.length) console.log(`daemon's V8 flags after the product's: ${nodeFlags.join(" ")}`);
const sock = resolvePaths({ home: tw.home }).socket;
const closers = [];

function sse(read) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: "/events", headers: { accept: "text/event-stream" } }, (res) => {
      if (read) res.resume();
      else res.pause();
      closers.push(() => res.destroy());
      resolve(res);
    });
    req.on("error", reject);
    req.end();
  });
}
function raw() {
  return new Promise((resolve, reject) => {
    const s = connect(sock, () => resolve(s));
    s.on("error", () => {});
    s.once("error", reject);
    closers.push(() => s.destroy());
  });
}

/** Every kind of hostile client, left open until the end (closers). */
async function hostile() {
  for (let i = 0; i < 3; i++) await sse(false);
  for (let i = 0; i < 50; i++) await sse(true);
  for (let i = 0; i < 150; i++) await raw();
  const rpc = await raw();
  rpc.pause();
  rpc.write("GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n");
  for (let i = 0; i < 300; i++) rpc.write(JSON.stringify({ id: i, call: "jobsList", input: { limit: 1000 } }) + "\n");
  const slow = [];
  for (let i = 0; i < 5; i++) {
    const s = await raw();
    s.write("POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1024\r\n\r\n{");
    slow.push(s);
  }
  const drip = setInterval(() => slow.forEach((s) => s.writable && s.write(" ")), 500);
  closers.push(() => clearInterval(drip));
}

/**
 * The daemon's main thread: ms on a core, and ms runnable but waiting for one (the kernel's
 * schedstat). The second is the machine's share of /health's wait, not the daemon's work.
 */
function mainThreadSched(pid) {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ").map(Number);
  let others = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    if (t === String(pid)) continue;
    try {
      others += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]) / 1e6;
    } catch {
      // the thread ended
    }
  }
  return { onCpuMs: run / 1e6, waitMs: wait / 1e6, othersMs: others };
}

/** Queues 6,000 jobs (paused), then drains them under the probe; returns the round's figures. */
async function round() {
  await tw.client.call("queuePause", {});
  for (let b = 0; b < 6; b++) await tw.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: 1000 }, (_, i) => ({ type: "bench-noop", payload: { n: b * 1000 + i, pad: "h".repeat(400) } })) });
  resetPeak(tw.pid);
  const probe = healthProbe(sock, 50, tw.pid);
  const cpu0 = mainThreadSched(tw.pid);
  const t0 = performance.now();
  await tw.client.call("queueResume", {});
  await until(async () => (await tw.client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await tw.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0, { timeoutMs: 300_000, intervalMs: 100 });
  const drainMs = performance.now() - t0;
  const cpu1 = mainThreadSched(tw.pid);
  const times = await probe.stop();
  return { drainMs, times, splits: probe.splits(), peak: peakMiB(tw.pid), onCpuMs: cpu1.onCpuMs - cpu0.onCpuMs, waitMs: cpu1.waitMs - cpu0.waitMs, othersMs: cpu1.othersMs - cpu0.othersMs };
}

try {
  await sleep(500);
  const before = rssMiB(tw.pid);
  if (!calm) await hostile();
  let listing = !calm;
  let lists = 0;
  const lister = (async () => {
    while (listing) {
      await tw.client.call("jobsList", { limit: 1000 }).catch(() => null);
      lists++;
    }
  })();
  for (let r = 1; r <= rounds; r++) {
    const { drainMs, times, splits, peak, onCpuMs, waitMs, othersMs } = await round();
    console.log(
      `${calm ? "calm" : "hostile clients"}, round ${r}: 6000 jobs drained in ${drainMs.toFixed(0)} ms; ` +
        `/health worst ${Math.max(...times).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms, median ${pct(times, 50).toFixed(1)} ms, ${times.filter((t) => t > 50).length} over 50 ms (${times.length} probes); ` +
        `daemon RSS ${before.toFixed(0)} MiB at start, peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}); ` +
        `its main thread ${onCpuMs.toFixed(0)} ms on a core, ${waitMs.toFixed(0)} ms waiting for one; its other threads ${othersMs.toFixed(0)} ms on a core`,
    );
    // What the daemon's main thread did while /health waited: its own work (on a core), a
    // wait for a core, or neither (blocked, or the probe's thread waiting for a core).
    const own = splits.map((s) => s.cpuMs);
    const worst = [...splits].sort((a, b) => b.ms - a.ms).slice(0, 3);
    console.log(
      `  /health's wait on the daemon's own work (its main thread on a core meanwhile): worst ${Math.max(0, ...own).toFixed(1)} ms, p99 ${pct(own, 99).toFixed(1)}, median ${pct(own, 50).toFixed(1)}, ${own.filter((t) => t > 50).length} over 50 ms; ` +
        `the 3 slowest answers (wall = on a core + waiting for one + blocked): ${worst.map((s) => `${s.ms.toFixed(0)} = ${s.cpuMs.toFixed(0)} + ${s.waitMs.toFixed(0)} + ${Math.max(0, s.ms - s.cpuMs - s.waitMs).toFixed(0)}`).join("; ")}`,
    );
  }
  listing = false;
  await lister;
  closers.splice(0).forEach((c) => c());
  await sleep(2000);
  console.log(`  ${lists} lists of 1000 by the reading client; daemon RSS ${rssMiB(tw.pid).toFixed(0)} MiB 2 s after the clients left`);
} finally {
  closers.splice(0).forEach((c) => c());
  await tw.stop({ keepHome: traceGc });
}

if (traceGc) {
  // V8's lines, as in "[pid:0x…]  1234 ms: Scavenge 5.1 (6.2) -> 4.8 (7.2) MB, 1.23 / 0.00 ms  …"
  // (the pause is the first figure; the mark-compact's incremental steps before it are not in it).
  const lines = readFileSync(join(tw.home, "daemon.log"), "utf8").split("\n");
  rmSync(tw.home, { recursive: true, force: true });
  const kinds = new Map();
  const pauses = [];
  for (const l of lines) {
    const m = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: ([A-Za-z-]+(?: \(reduce\))?)\b.*?MB, ([\d.]+) \/ ([\d.]+) ms/.exec(l);
    if (!m) continue;
    const [, at, kind, ms] = m;
    const k = kinds.get(kind) ?? { n: 0, ms: 0, over20: 0 };
    k.n++;
    k.ms += Number(ms);
    if (Number(ms) > 20) k.over20++;
    kinds.set(kind, k);
    pauses.push({ at: Number(at), kind, ms: Number(ms), line: l.replace(/^\[[^\]]*\]\s+/, "") });
  }
  console.log(`\ngarbage collection in the daemon (--trace-gc, the whole run):`);
  for (const [kind, k] of kinds) console.log(`  ${kind}: ${k.n}, ${k.ms.toFixed(0)} ms in all, ${k.over20} over 20 ms`);
  console.log(`  the longest pauses:`);
  for (const p of pauses.sort((a, b) => b.ms - a.ms).slice(0, 8)) console.log(`    ${p.line.slice(0, 160)}`);
}

if (profDir) {
  const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
  files.sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size);
  const p = JSON.parse(readFileSync(join(profDir, files[0]), "utf8"));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (id) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const short = url.replace(/^file:\/\//, "").replace(/^.*\/(dist|node_modules)\//, "$1/");
    return `${functionName || "(anonymous)"} ${short ? `${short}:${lineNumber + 1}` : ""}`.trim();
  };
  /** The innermost frame of ours (dist/) on the sample's stack: who asked for the work. */
  const ours = (id) => {
    for (let x = id; x !== undefined; x = parent.get(x)) if (/\/dist\//.test(byId.get(x).callFrame.url)) return name(x);
    return name(id);
  };
  // A task is a run of samples under one entry into JS (a child of the root): a timer, an I/O
  // callback, an immediate. Garbage collection and native time between its samples count
  // as its own; idle or another entry ends it.
  const root = p.nodes[0].id;
  const entry = (id) => {
    let x = id;
    while (parent.get(x) !== undefined && parent.get(x) !== root) x = parent.get(x);
    return x;
  };
  /** Whether the sample is inside an engine tick (the tick's own work: its store call, its placing of jobs). */
  const tickFrames = new Map();
  const inTick = (id) => {
    if (tickFrames.has(id)) return tickFrames.get(id);
    const { functionName, url } = byId.get(id).callFrame;
    const yes = (functionName === "tick" && /dist\/queue\/engine\.js$/.test(url)) || (parent.get(id) !== undefined && inTick(parent.get(id)));
    tickFrames.set(id, yes);
    return yes;
  };
  const tasks = [];
  let cur = null;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    const dt = p.timeDeltas[i + 1] ?? 0;
    const fn = byId.get(id).callFrame.functionName;
    if (fn === "(idle)") {
      cur = null;
      continue;
    }
    const e = fn === "(garbage collector)" || fn === "(program)" ? (cur?.entry ?? entry(id)) : entry(id);
    if (!cur || cur.entry !== e) {
      cur = { entry: e, us: 0, tickUs: 0, ours: new Map() };
      tasks.push(cur);
    }
    cur.us += dt;
    // A gap between two samples far over the interval is the thread waiting for a core (a
    // shared machine), not the tick's work: counted as one interval.
    if (inTick(id)) cur.tickUs += Math.min(dt, 1000);
    const o = ours(id);
    cur.ours.set(o, (cur.ours.get(o) ?? 0) + dt);
  }
  const ticks = tasks.filter((t) => t.tickUs > 0).map((t) => t.tickUs / 1000);
  console.log(
    `\nengine ticks (the time under the engine's tick in one task, profiler on, gaps over 1 ms between samples counted as 1 ms): ${ticks.length} tasks; ` +
      `longest ${Math.max(0, ...ticks).toFixed(1)} ms, p99 ${pct(ticks, 99).toFixed(1)} ms, median ${pct(ticks, 50).toFixed(1)} ms; ${ticks.filter((ms) => ms > 10).length} over 10 ms`,
  );
  const long = tasks.filter((t) => t.us > 20_000).sort((a, b) => b.us - a.us);
  console.log(`\n${long.length} tasks over 20 ms on the main thread (of ${tasks.length}); the longest:`);
  for (const t of long.slice(0, 8)) {
    console.log(`\n  ${(t.us / 1000).toFixed(0)} ms in ${name(t.entry)}:`);
    for (const [k, us] of [...t.ours].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`    ${(us / 1000).toFixed(1).padStart(6)} ms under ${k}`);
  }
  rmSync(profDir, { recursive: true, force: true });
}
