// Two builds of teamwork side by side, for a regression hunt: one-by-one RPC enqueues with the
// daemon from one build and the client from another (the mix test: says whether a loss is
// the daemon's or the client's), and the CPU each side spent per call, which varies much less
// than the rate on a shared machine. The daemon's CPU is split into its main thread and the
// rest (V8's helper threads: garbage collection, compilation).
//
//   node bench/compare-builds.mjs <rootA> <rootB> [--n 3000] [--rounds 3] [--durability process|full] [--paused]
//
// The calls enqueue a job due in an hour into a running queue (each tick plans a claim and
// finds nothing due); --paused: the queue is paused first and the jobs are due now, as in
// bench A's one-by-one enqueue (no claim at all).
//
// Each root is a built checkout (dist/ and bench/noop.mjs), e.g. a `git worktree add --detach`
// of the base commit. Rounds alternate A/A, B/B, A-daemon/B-client, B-daemon/A-client.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { median, untilHealthy } from "./lib/util.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const [a, b] = args.filter((x, i) => !x.startsWith("--") && !args[i - 1]?.startsWith("--")).map((p) => resolve(p));
if (!a || !b) {
  console.error("usage: node bench/compare-builds.mjs <rootA> <rootB> [--n 3000] [--rounds 3] [--durability process|full] [--paused]");
  process.exit(2);
}
const N = Number(opt("n", 3000));
const ROUNDS = Number(opt("rounds", 3));
const durability = opt("durability", "process");
const paused = args.includes("--paused");

/** CPU ms of each thread of a process, by thread id (Linux /proc). */
function threadCpu(pid) {
  const out = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8").split(") ")[1].split(" ");
      out.set(t, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function run(daemonRoot, clientRoot) {
  const { Client } = await import(join(clientRoot, "dist/client/client.js"));
  const { resolvePaths } = await import(join(clientRoot, "dist/config/paths.js"));
  const home = mkdtempSync(join(tmpdir(), "tw-builds-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [join(daemonRoot, "bench/noop.mjs")], concurrency: 3, durability, retention: "30d" }));
  const fd = openSync(join(home, "daemon.log"), "a");
  const child = spawn(process.execPath, ["--max-semi-space-size=1", "--optimize-for-size", join(daemonRoot, "dist/daemon/main.js"), "--home", home], { stdio: ["ignore", fd, fd], cwd: home });
  closeSync(fd);
  const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: true });
  try {
    await untilHealthy(client);
    if (paused) await client.call("queuePause", {});
    let i = 0;
    const call = paused ? () => client.call("jobsEnqueue", { type: "bench-noop", payload: { i: i++ } }) : () => client.call("jobsEnqueue", { type: "bench-noop", delayMs: 3_600_000 });
    for (let i = 0; i < 300; i++) await call();
    const before = threadCpu(child.pid);
    const c0 = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < N; i++) await call();
    const rate = N / ((performance.now() - t) / 1000);
    const cu = process.cpuUsage(c0);
    const after = threadCpu(child.pid);
    const main = String(child.pid);
    let mainMs = 0;
    let otherMs = 0;
    for (const [tid, ms] of after) {
      const d = ms - (before.get(tid) ?? 0);
      if (tid === main) mainMs += d;
      else otherMs += d;
    }
    return { rate, daemonMain: (mainMs * 1000) / N, daemonOther: (otherMs * 1000) / N, client: (cu.user + cu.system) / N };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
    client.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const pairs = [
  [a, a],
  [b, b],
  [a, b],
  [b, a],
];
const results = new Map(pairs.map((p) => [p.join(" "), []]));
for (let r = 0; r < ROUNDS; r++) for (const [d, c] of pairs) results.get(`${d} ${c}`).push(await run(d, c));
console.log(`one-by-one RPC enqueue${paused ? " (queue paused)" : " (due in an hour)"}, durability ${durability}, n=${N}, median of ${ROUNDS} (CPU in µs per call):`);
for (const [d, c] of pairs) {
  const rs = results.get(`${d} ${c}`);
  const m = (k) => median(rs.map((x) => x[k])).toFixed(0);
  const range = (k) => `${Math.min(...rs.map((x) => x[k])).toFixed(0)}–${Math.max(...rs.map((x) => x[k])).toFixed(0)}`;
  console.log(
    `  daemon ${basename(d).padEnd(10)} client ${basename(c).padEnd(10)} ${m("rate")}/s (${range("rate")})  daemon main ${m("daemonMain")} (${range("daemonMain")}) + other threads ${m("daemonOther")}  client ${m("client")}`,
  );
}
