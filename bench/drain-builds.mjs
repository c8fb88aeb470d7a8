// Builds of teamwork draining the same queue in turn (bench workload B, interleaved): per
// round, each build's daemon gets N queued no-ops (enqueued paused, then the daemon restarted
// on them, as run.mjs does), resumes and drains them; the wall rate, and the on-CPU time per
// job of the daemon's main thread and of its other threads (worker threads, V8 helpers), read
// from /proc/<pid>/task/<tid>/schedstat; and its peak RSS meanwhile (VmHWM, reset at the start). CPU per job is the steadier figure on a shared
// machine; the rounds rotate which build goes first.
//
//   node bench/drain-builds.mjs <rootA> <rootB> [...] [--n 20000] [--rounds 5]
//        [--concurrency 3] [--durability full|process] [--threads]
//
// --threads: each drain's CPU per job thread by thread as well (by tid, in the order made).
//
// Each root is a built checkout (dist/, bench/noop.mjs, node_modules).
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { peakMiB, resetPeak, sleep, until, untilHealthy } from "./lib/util.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const roots = args.filter((x, i) => !x.startsWith("--") && !args[i - 1]?.match(/^--(n|rounds|concurrency|durability)$/)).map((p) => resolve(p));
if (roots.length < 1) {
  console.error("usage: node bench/drain-builds.mjs <rootA> [<rootB> ...] [--n 20000] [--rounds 5] [--concurrency 3] [--durability full|process]");
  process.exit(2);
}
const N = Number(opt("n", 20000));
const ROUNDS = Number(opt("rounds", 5));
const concurrency = Number(opt("concurrency", 3));
const durability = opt("durability", "full");
const BATCH = 1000;
const verbose = args.includes("--threads");

/** On-CPU µs of a process's main thread and of its other threads (and per thread, by tid: name and µs). */
function cpu(pid) {
  let main = 0;
  let other = 0;
  const threads = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
      threads.set(t, { name: readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim(), us: ns / 1000 });
      if (t === String(pid)) main += ns / 1000;
      else other += ns / 1000;
    } catch {
      // the thread ended
    }
  }
  return { main, other, threads };
}

/**
 * Each thread's µs per job between two readings, in the order the threads were made (by tid:
 * the main thread, V8's and libuv's helpers, then worker threads), those that did anything.
 */
function byThread(c0, c1, n) {
  const out = [];
  for (const [tid, t] of [...c1.threads].sort((a, b) => Number(a[0]) - Number(b[0]))) {
    const us = (t.us - (c0.threads.get(tid)?.us ?? 0)) / n;
    if (us >= 0.5) out.push(`${tid}${t.name === "node" ? "" : ` ${t.name}`} ${us.toFixed(1)}`);
  }
  return out.join(", ");
}

async function start(root, home) {
  const { Client } = await import(join(root, "dist/client/client.js"));
  const { resolvePaths } = await import(join(root, "dist/config/paths.js"));
  const { DAEMON_NODE_FLAGS } = await import(join(root, "dist/client/autostart.js"));
  const fd = openSync(join(home, "daemon.log"), "a");
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, join(root, "dist/daemon/main.js"), "--home", home], { stdio: ["ignore", fd, fd], cwd: home });
  closeSync(fd);
  const exit = new Promise((r) => child.on("exit", r));
  const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: true });
  await untilHealthy(client);
  return {
    client,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await exit;
      client.close();
    },
  };
}

const drained = async (client) =>
  (await client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0;

async function drain(root) {
  const home = mkdtempSync(join(tmpdir(), "tw-drain-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [join(root, "bench/noop.mjs")], concurrency, durability, retention: "30d" }));
  let d = await start(root, home);
  try {
    await d.client.call("queuePause", {});
    for (let i = 0; i < N; i += BATCH) {
      const jobs = Array.from({ length: Math.min(BATCH, N - i) }, (_, k) => ({ type: "bench-noop", payload: { i: i + k } }));
      await d.client.call("jobsEnqueueBatchIds", { jobs });
    }
    await d.stop();
    d = await start(root, home);
    await sleep(200);
    resetPeak(d.pid);
    const c0 = cpu(d.pid);
    const t0 = performance.now();
    await d.client.call("queueResume", {});
    await until(() => drained(d.client), { timeoutMs: 600_000, intervalMs: 10, what: "the drain" });
    const s = (performance.now() - t0) / 1000;
    const c1 = cpu(d.pid);
    const peak = peakMiB(d.pid);
    const counts = (await d.client.call("daemonStatus", {})).counts.jobs;
    if (counts.complete !== N) throw new Error(`${root}: completed ${counts.complete} of ${N}`);
    return { rate: N / s, main: (c1.main - c0.main) / N, other: (c1.other - c0.other) / N, peak, threads: byThread(c0, c1, N) };
  } finally {
    await d.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

const results = roots.map(() => []);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < roots.length; k++) {
    const i = (r + k) % roots.length;
    const m = await drain(roots[i]);
    results[i].push(m);
    console.log(`round ${r + 1} ${basename(roots[i])}: ${m.rate.toFixed(0)} jobs/s, main ${m.main.toFixed(1)} µs/job, other threads ${m.other.toFixed(1)} µs/job, peak RSS ${m.peak.toFixed(0)} MiB${verbose ? `\n  by thread (tid), µs/job: ${m.threads}` : ""}`);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs, d) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
console.log(`\nB drain, N ${N}, concurrency ${concurrency}, durability ${durability}, ${ROUNDS} rounds; median (min–max)`);
for (const [i, root] of roots.entries()) {
  const rs = results[i];
  console.log(`${basename(root)}: ${fmt(rs.map((m) => m.rate), 0)} jobs/s; main ${fmt(rs.map((m) => m.main), 1)} µs/job; other threads ${fmt(rs.map((m) => m.other), 1)} µs/job; peak RSS ${fmt(rs.map((m) => m.peak), 0)} MiB`);
}
if (roots.length > 1) {
  for (let i = 1; i < roots.length; i++) {
    const d = results[i].map((m, r) => m.main - results[0][r].main);
    console.log(`${basename(roots[i])} − ${basename(roots[0])}, main thread µs/job, round by round: ${fmt(d, 1)}`);
  }
}
process.exit(0);
