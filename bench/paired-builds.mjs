// Builds of teamwork measured side by side in the same moments: one daemon per build, and one
// client calling them in turn (call A, call B, call A, ...), so a burst of load from whatever
// else runs on the machine falls on both alike. Per window of calls, the on-CPU time each
// daemon's main thread and its other threads (V8's GC and compiler helpers) spent per call,
// read from /proc/<pid>/task/<tid>/schedstat (nanoseconds; /proc's stat counts 10 ms ticks).
// Reports each build's quartiles over the windows, and each build's difference from the
// first one window by window (the paired figure: far steadier than either build's own).
//
//   node bench/paired-builds.mjs <rootA> <rootB> [<rootC> ...] [--n 500] [--windows 30]
//        [--durability process|full] [--paused] [--http]
//   node bench/paired-builds.mjs <root>:rpc <root>:http [...]   # one build, two ways in
//
// The calls are compare-builds.mjs's: jobsEnqueue of a job due in an hour into a running
// queue; --paused: the queue paused first and the jobs due now (no claim at all). --http:
// POST /jobs over one HTTP keep-alive connection instead of RPC. Each root is a built
// checkout (dist/, bench/noop.mjs, node_modules); each daemon is called through its own
// build's client (with --http, through lib/http-post.mjs's lean keep-alive client). A root
// written <root>:rpc or <root>:http is called that way whatever --http says: the same build
// over RPC and over HTTP side by side says what HTTP costs beyond RPC.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { pct, untilHealthy } from "./lib/util.mjs";
import { httpPoster } from "./lib/http-post.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const specs = args.filter((x, i) => !x.startsWith("--") && !args[i - 1]?.match(/^--(n|windows|durability)$/)).map((x) => /^(.*):(rpc|http)$/.exec(x) ?? [x, x, null]);
const roots = specs.map(([, p]) => resolve(p));
if (roots.length < 2) {
  console.error("usage: node bench/paired-builds.mjs <rootA> <rootB> [...] [--n 500] [--windows 30] [--durability process|full] [--paused] [--http]");
  process.exit(2);
}
const N = Number(opt("n", 500));
const WINDOWS = Number(opt("windows", 30));
const durability = opt("durability", "process");
const paused = args.includes("--paused");
const http = args.includes("--http");
/** How each root is called: its own :rpc or :http, else --http's. */
const ways = specs.map(([, , way]) => way ?? (http ? "http" : "rpc"));
const label = (j) => (specs[j][2] ? `${basename(roots[j])}:${ways[j]}` : basename(roots[j]));

/** On-CPU µs of a process's main thread and of its other threads. */
function cpu(pid) {
  let main = 0;
  let other = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
      if (t === String(pid)) main += ns / 1000;
      else other += ns / 1000;
    } catch {
      // the thread ended
    }
  }
  return { main, other };
}

async function start(root, way) {
  const { Client } = await import(join(root, "dist/client/client.js"));
  const { resolvePaths } = await import(join(root, "dist/config/paths.js"));
  const home = mkdtempSync(join(tmpdir(), "tw-paired-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [join(root, "bench/noop.mjs")], concurrency: 3, durability, retention: "30d" }));
  const fd = openSync(join(home, "daemon.log"), "a");
  const child = spawn(process.execPath, ["--max-semi-space-size=1", "--optimize-for-size", join(root, "dist/daemon/main.js"), "--home", home], { stdio: ["ignore", fd, fd], cwd: home });
  closeSync(fd);
  const socketPath = resolvePaths({ home }).socket;
  const client = new Client({ socket: socketPath, keepAlive: true });
  await untilHealthy(client);
  if (paused) await client.call("queuePause", {});
  let i = 0;
  const spec = () => (paused ? { type: "bench-noop", payload: { i: i++ } } : { type: "bench-noop", delayMs: 3_600_000 });
  let call = () => client.call("jobsEnqueue", spec());
  let poster = null;
  if (way === "http") {
    poster = httpPoster(socketPath);
    call = () => poster.post(spec());
  }
  return { root, child, client, home, call, poster };
}

const daemons = [];
for (const [j, root] of roots.entries()) daemons.push(await start(root, ways[j]));
try {
  for (let k = 0; k < 500; k++) for (const d of daemons) await d.call();
  const windows = daemons.map(() => []);
  for (let w = 0; w < WINDOWS; w++) {
    // Each window starts with another build, so none is always first after a pause.
    const order = daemons.map((_, j) => (j + w) % daemons.length);
    const before = daemons.map((d) => cpu(d.child.pid));
    const ms = daemons.map(() => 0);
    for (let k = 0; k < N; k++) {
      for (const j of order) {
        const t = performance.now();
        await daemons[j].call();
        ms[j] += performance.now() - t;
      }
    }
    daemons.forEach((d, j) => {
      const after = cpu(d.child.pid);
      windows[j].push({ main: (after.main - before[j].main) / N, other: (after.other - before[j].other) / N, rate: N / (ms[j] / 1000) });
    });
  }
  const q = (xs) => `${pct(xs, 25).toFixed(1)} / ${pct(xs, 50).toFixed(1)} / ${pct(xs, 75).toFixed(1)}`;
  console.log(`one-by-one ${[...new Set(ways)].map((w) => w.toUpperCase()).join(" and ")} enqueue${paused ? " (queue paused)" : " (due in an hour)"}, durability ${durability}, ${WINDOWS} windows of ${N} calls per build, calls alternating`);
  console.log(`CPU µs per call, p25 / median / p75 over the windows:`);
  daemons.forEach((d, j) => {
    const ws = windows[j];
    console.log(`  ${label(j).padEnd(16)} main ${q(ws.map((x) => x.main))}   other threads ${q(ws.map((x) => x.other))}   rate ${pct(ws.map((x) => x.rate), 50).toFixed(0)}/s`);
  });
  for (let j = 1; j < daemons.length; j++) {
    const main = windows[j].map((x, w) => x.main - windows[0][w].main);
    const other = windows[j].map((x, w) => x.other - windows[0][w].other);
    console.log(`  ${label(j)} − ${label(0)}, window by window: main ${q(main)}   other threads ${q(other)}`);
  }
} finally {
  for (const d of daemons) {
    d.child.kill("SIGTERM");
    await new Promise((r) => (d.child.exitCode !== null ? r() : d.child.on("exit", r)));
    d.client.close();
    d.poster?.close();
    rmSync(d.home, { recursive: true, force: true });
  }
}
