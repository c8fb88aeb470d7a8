// Two builds' daemons under `node --cpu-prof` for the same one-by-one enqueue, side by side:
// the self time of each daemon's main thread by function, and the inclusive time of the
// functions named with --fn (the tick, the placement, ...), in ms per 1,000 calls. For a
// regression hunt next to compare-builds.mjs (which says how much; this says where). The
// daemons run side by side and the client calls them in turn, so load from elsewhere falls
// on all alike.
//
//   node bench/profile-builds.mjs <rootA> <rootB> [--n 8000] [--durability process|full]
//        [--paused] [--top 30] [--fn tick,planPlacement,take] [--interval 100] [--gc] [--steady] [--http] [--keep]
//
// --interval: the sampling interval in µs (node's default is 1000; 100 gives ten times the samples). --gc: the daemon
// runs with --trace-gc, and the number of collections is printed (the young generation is
// 1 MiB, so a young collection is about 1 MiB allocated). --steady: only the samples taken
// during the measured calls count (after 300 warm-up calls), not the daemon's start-up (its
// module loading and migrations otherwise show up as per-call cost; the profile's timestamps
// and process.hrtime are the same monotonic clock). --http: the calls are POST /jobs on one
// HTTP keep-alive connection (lib/http-post.mjs, its lean client) instead of RPC.
//
// The calls are compare-builds.mjs's: jobsEnqueue of a job due in an hour into a running
// queue (each tick plans a claim and finds nothing due); --paused: the queue paused first and
// jobs due now, as bench A's one-by-one enqueue.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { untilHealthy } from "./lib/util.mjs";
import { httpPoster } from "./lib/http-post.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const roots = args.filter((x, i) => !x.startsWith("--") && !args[i - 1]?.match(/^--(n|durability|top|fn|interval)$/)).map((p) => resolve(p));
if (roots.length === 0) {
  console.error("usage: node bench/profile-builds.mjs <rootA> [<rootB>] [--n 8000] [--durability process|full] [--paused] [--top 30] [--fn a,b] [--keep]");
  process.exit(2);
}
const N = Number(opt("n", 8000));
const durability = opt("durability", "process");
const paused = args.includes("--paused");
const TOP = Number(opt("top", 30));
const FNS = opt("fn", "tick,planPlacement,placement,take,slotViews,claimDue,enqueue,insert").split(",");
const keep = args.includes("--keep");
const INTERVAL = Number(opt("interval", 100));
const GC = args.includes("--gc");
const STEADY = args.includes("--steady");
const HTTP = args.includes("--http");

/** Starts a build's daemon under the profiler, ready to be called. */
async function start(root) {
  const { Client } = await import(join(root, "dist/client/client.js"));
  const { resolvePaths } = await import(join(root, "dist/config/paths.js"));
  const home = mkdtempSync(join(tmpdir(), "tw-profb-"));
  const profDir = join(home, "prof");
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [join(root, "bench/noop.mjs")], concurrency: 3, durability, retention: "30d" }));
  const fd = openSync(join(home, "daemon.log"), "a");
  const child = spawn(process.execPath, ["--max-semi-space-size=1", "--optimize-for-size", "--cpu-prof", "--cpu-prof-interval", String(INTERVAL), `--cpu-prof-dir=${profDir}`, ...(GC ? ["--trace-gc"] : []), join(root, "dist/daemon/main.js"), "--home", home], {
    stdio: ["ignore", fd, fd],
    cwd: home,
  });
  closeSync(fd);
  const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: true });
  const d = { root, home, profDir, child, client, poster: null, call: null, ms: 0 };
  await untilHealthy(client);
  if (paused) await client.call("queuePause", {});
  const spec = (i) => (paused ? { type: "bench-noop", payload: { i } } : { type: "bench-noop", delayMs: 3_600_000 });
  d.poster = HTTP ? httpPoster(resolvePaths({ home }).socket) : null;
  d.call = d.poster ? (i) => d.poster.post(spec(i)) : (i) => client.call("jobsEnqueue", spec(i));
  return d;
}

async function stop(d) {
  d.child.kill("SIGTERM");
  await new Promise((r) => (d.child.exitCode !== null ? r() : d.child.on("exit", r)));
  d.client.close();
  d.poster?.close();
}

/** The daemon's profile, summarised (after it stopped). */
function report(d, window) {
  const { home, profDir } = d;
  const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
  files.sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size);
  const prof = JSON.parse(readFileSync(join(profDir, files[0]), "utf8"));
  // --trace-gc: how many young-generation collections (each about a semi-space of allocation) the calls cost.
  const gc = GC ? readFileSync(join(home, "daemon.log"), "utf8").split("\n") : [];
  const scavenges = gc.filter((l) => /Scavenge|Minor/.test(l)).length;
  const markCompacts = gc.filter((l) => /Mark-Compact|Mark-sweep/i.test(l)).length;
  if (keep) console.log(`kept ${join(profDir, files[0])}`);
  else rmSync(home, { recursive: true, force: true });
  return { rate: N / (d.ms / 1000), scavenges, markCompacts, ...summarise(prof, STEADY ? window : { from: 0, to: Infinity }) };
}

/** Self time by function, and inclusive time of the functions named in FNS (ms). */
function summarise(profile, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const dt = profile.timeDeltas;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += dt[i] ?? 0;
    if (at < window.from || at > window.to) continue;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  }
  const fns = new Map();
  const areas = new Map();
  const incl = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName !== "(idle)") busy += us;
    const short = url.replace(/^file:\/\//, "").replace(/^.*\/(dist|node_modules)\//, "$1/");
    const key = `${functionName || "(anonymous)"}  ${short ? `${short}:${lineNumber + 1}` : ""}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = areaOf(functionName, url);
    areas.set(area, (areas.get(area) ?? 0) + us);
    // Inclusive: each named function counted once per sample, however deep it recurses.
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const name = byId.get(n).callFrame.functionName;
      if (FNS.includes(name) && !seen.has(name) && /dist\//.test(byId.get(n).callFrame.url)) {
        seen.add(name);
        incl.set(name, (incl.get(name) ?? 0) + us);
      }
    }
  }
  return { busy: busy / 1000, areas: new Map([...areas].map(([k, v]) => [k, v / 1000])), fns: new Map([...fns].map(([k, v]) => [k, v / 1000])), incl: new Map([...incl].map(([k, v]) => [k, v / 1000])) };
}

function areaOf(fn, url) {
  if (fn === "(idle)") return "idle";
  if (fn === "(garbage collector)") return "garbage collection";
  if (fn === "(program)") return "(program): V8/native outside JS";
  if (/better-sqlite3/.test(url)) return "better-sqlite3 (JS side, with its native calls)";
  const m = /dist\/([a-z-]+)\//.exec(url);
  if (m) return `teamwork ${m[1]}/`;
  if (/^node:/.test(url)) return "node internals";
  if (url === "") return `native: ${fn}`;
  return "other JS";
}

// The builds' daemons run side by side and are called in turn (call A, call B, ...), so a
// burst of load from elsewhere on the machine falls on all of them alike.
const daemons = [];
const window = { from: 0, to: Infinity };
try {
  for (const root of roots) daemons.push(await start(root));
  // Warm-up calls, then the measured ones; the window's ends on the monotonic clock the
  // profile's timestamps use (--steady: only its samples are counted, not the start-up's).
  for (let i = 0; i < 300; i++) for (const d of daemons) await d.call(-1 - i);
  window.from = Number(process.hrtime.bigint() / 1000n);
  const reversed = [...daemons].reverse();
  for (let i = 0; i < N; i++) {
    for (const d of i % 2 ? reversed : daemons) {
      const t = performance.now();
      await d.call(i);
      d.ms += performance.now() - t;
    }
  }
  window.to = Number(process.hrtime.bigint() / 1000n);
} finally {
  for (const d of daemons) await stop(d);
}
const results = daemons.map((d) => report(d, window));
const per1k = (ms) => ((ms / N) * 1000).toFixed(1).padStart(8);
const names = roots.map((r) => basename(r).padStart(8));
console.log(`one-by-one ${HTTP ? "HTTP" : "RPC"} enqueue${paused ? " (queue paused)" : " (due in an hour)"}, durability ${durability}, n=${N}; ms per 1,000 calls on the daemon's main thread`);
console.log(`rate under the profiler: ${results.map((r, i) => `${basename(roots[i])} ${r.rate.toFixed(0)}/s`).join(", ")}`);
console.log(`\n${"busy (not idle)".padEnd(70)}${names.join("")}`);
console.log(`${"".padEnd(70)}${results.map((r) => per1k(r.busy)).join("")}`);
if (GC) console.log(`young-generation GCs: ${results.map((r, i) => `${basename(roots[i])} ${r.scavenges}`).join(", ")}; full GCs: ${results.map((r, i) => `${basename(roots[i])} ${r.markCompacts}`).join(", ")}`);
console.log(`\nself time by area${"".padEnd(53)}${names.join("")}`);
const areaKeys = [...new Set(results.flatMap((r) => [...r.areas.keys()]))].filter((k) => k !== "idle");
areaKeys.sort((x, y) => Math.max(...results.map((r) => r.areas.get(y) ?? 0)) - Math.max(...results.map((r) => r.areas.get(x) ?? 0)));
for (const k of areaKeys) console.log(`  ${k.slice(0, 68).padEnd(68)}${results.map((r) => per1k(r.areas.get(k) ?? 0)).join("")}`);
console.log(`\ninclusive${"".padEnd(61)}${names.join("")}`);
for (const f of FNS) console.log(`  ${f.padEnd(68)}${results.map((r) => per1k(r.incl.get(f) ?? 0)).join("")}`);
console.log(`\nself time, top ${TOP} (by the largest of the builds)${"".padEnd(19)}${names.join("")}`);
const keys = new Set(results.flatMap((r) => [...r.fns.keys()]));
const rows = [...keys].map((k) => [k, results.map((r) => r.fns.get(k) ?? 0)]).filter(([k]) => !k.startsWith("(idle)"));
rows.sort((x, y) => Math.max(...y[1]) - Math.max(...x[1]));
for (const [k, v] of rows.slice(0, TOP)) console.log(`  ${k.slice(0, 68).padEnd(68)}${v.map(per1k).join("")}`);
