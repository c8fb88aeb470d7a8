// Hostile clients, as a measurement (tests/reliability/hostile-clients.test.ts asserts loose
// bounds; this prints the figures, and with --profile says what blocks the main thread).
// One daemon drains 6,000 jobs while: 3 event readers never read, 50 read everything, 150
// connections sit idle, an RPC client pipelines 300 biggest lists and never reads, 5 HTTP
// bodies arrive a byte every 500 ms, and a client loops over the biggest list. A worker thread
// asks for /health every 50 ms (bench/lib/health-probe.mjs). Prints /health's worst and p99, the daemon's RSS before, at peak
// and after (the clients gone, 2 s later).
//
//   npm run build && node bench/hostile.mjs [--calm] [--rounds N] [--profile]
//
// --profile runs the daemon under --cpu-prof and lists the main thread's tasks over 20 ms
// with the functions that filled them: what makes /health wait; and how long the engine's
// ticks held it (the time under the engine's tick within one task).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
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
const profDir = profile ? mkdtempSync(join(tmpdir(), "tw-hostile-prof-")) : null;
const tw = await startTeamwork({ concurrency: 3, durability: "full", execArgv: profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-interval=200"] : [] });
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

/** Queues 6,000 jobs (paused), then drains them under the probe; returns the round's figures. */
async function round() {
  await tw.client.call("queuePause", {});
  for (let b = 0; b < 6; b++) await tw.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: 1000 }, (_, i) => ({ type: "bench-noop", payload: { n: b * 1000 + i, pad: "h".repeat(400) } })) });
  resetPeak(tw.pid);
  const probe = healthProbe(sock, 50);
  const t0 = performance.now();
  await tw.client.call("queueResume", {});
  await until(async () => (await tw.client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await tw.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0, { timeoutMs: 300_000, intervalMs: 100 });
  const drainMs = performance.now() - t0;
  const times = await probe.stop();
  return { drainMs, times, peak: peakMiB(tw.pid) };
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
    const { drainMs, times, peak } = await round();
    console.log(
      `${calm ? "calm" : "hostile clients"}, round ${r}: 6000 jobs drained in ${drainMs.toFixed(0)} ms; ` +
        `/health worst ${Math.max(...times).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms, median ${pct(times, 50).toFixed(1)} ms (${times.length} probes); ` +
        `daemon RSS ${before.toFixed(0)} MiB at start, peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)})`,
    );
  }
  listing = false;
  await lister;
  closers.splice(0).forEach((c) => c());
  await sleep(2000);
  console.log(`  ${lists} lists of 1000 by the reading client; daemon RSS ${rssMiB(tw.pid).toFixed(0)} MiB 2 s after the clients left`);
} finally {
  closers.splice(0).forEach((c) => c());
  await tw.stop();
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
